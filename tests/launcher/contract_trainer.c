// contract_trainer: a small real MPI program that follows the process contract of
// `shardlm train` (docs/launcher.md), so that the launcher and the SLURM templates are tested
// with real ranks, real signals and real checkpoints before (and independently of) the trainer.
//
//   contract_trainer train [--config FILE] --out RUN_DIR --resume auto|never --save-every N
//                          [--exit-after-minutes M] [--steps N] [--step-ms MS] [--save-ms MS]
//                          [--n-layer N --n-head N --n-embd N --vocab-size N --max-seq-len N]
//
// What it shares with the trainer:
//   - exit codes: 0 finished, 75 checkpoint saved after SIGUSR1/SIGTERM or --exit-after-minutes,
//     anything else a failure;
//   - RUN_DIR/checkpoints/step_<8 digits>/ committed by renaming from .tmp once every rank's file
//     and the manifest are written; RUN_DIR/checkpoints/latest names the newest one;
//   - RUN_DIR/progress/rank_<k>.txt rewritten (atomic rename) after every step:
//     "step=<n> time=<unix seconds>";
//   - RUN_DIR/run_config.ini written at the first start ([model] from --config and the flags).
// Its "weights" are a few doubles per rank, updated each step from an all-reduced "gradient",
// so ranks are coupled like data-parallel replicas and a resumed run is bit-identical to an
// uninterrupted one only if checkpoints are saved and loaded correctly.
// Config keys it reads: [model] anything (copied to run_config.ini), [train] steps, step_ms,
// save_ms (flags override them).
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { kExitOk = 0, kExitError = 1, kExitSavedRequeue = 75 };
enum { kWeights = 8, kMaxKeys = 32 };

static volatile sig_atomic_t g_stop_signal = 0;
static int g_rank = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "contract_trainer rank %d: error: ", g_rank);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  MPI_Abort(MPI_COMM_WORLD, kExitError);
  exit(kExitError);
}

enum { kPathMax = 4096 };

// snprintf into a kPathMax buffer; a path that does not fit is an error, not a silent cut.
static void format_path(char* out, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, kPathMax, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= kPathMax) die("path too long (format %s)", fmt);
}

typedef struct {
  char key[64];
  char value[128];
} KeyValue;

typedef struct {
  const char* config_path;
  const char* run_dir;
  int resume;  // 1: auto, 0: never
  int save_every;
  double exit_after_minutes;  // <= 0: off
  int steps;
  int step_ms;
  int save_ms;  // extra time inside each save, so tests can hit a save in progress
  KeyValue model[kMaxKeys];
  int n_model;
} Options;

static void set_model_key(Options* o, const char* key, const char* value) {
  for (int i = 0; i < o->n_model; ++i)
    if (strcmp(o->model[i].key, key) == 0) {
      snprintf(o->model[i].value, sizeof o->model[i].value, "%s", value);
      return;
    }
  if (o->n_model == kMaxKeys) die("too many [model] keys");
  snprintf(o->model[o->n_model].key, sizeof o->model[0].key, "%s", key);
  snprintf(o->model[o->n_model].value, sizeof o->model[0].value, "%s", value);
  ++o->n_model;
}

static char* trim(char* s) {
  while (*s == ' ' || *s == '\t') ++s;
  char* e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) --e;
  *e = '\0';
  return s;
}

static void read_config(Options* o, const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) die("cannot open config %s: %s", path, strerror(errno));
  char line[512], section[64] = "";
  while (fgets(line, sizeof line, f)) {
    char* s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';') continue;
    if (*s == '[') {
      char* end = strchr(s, ']');
      if (!end) die("%s: bad section line '%s'", path, s);
      *end = '\0';
      snprintf(section, sizeof section, "%s", trim(s + 1));
      continue;
    }
    char* eq = strchr(s, '=');
    if (!eq) die("%s: expected key=value, got '%s'", path, s);
    *eq = '\0';
    char* key = trim(s);
    char* value = trim(eq + 1);
    if (strcmp(section, "model") == 0) {
      set_model_key(o, key, value);
    } else if (strcmp(section, "train") == 0) {
      if (strcmp(key, "steps") == 0) o->steps = atoi(value);
      if (strcmp(key, "step_ms") == 0) o->step_ms = atoi(value);
      if (strcmp(key, "save_ms") == 0) o->save_ms = atoi(value);
    }
  }
  fclose(f);
}

static int is_model_flag(const char* flag) {
  static const char* const kFlags[] = {"--model", "--n-layer", "--n-head", "--n-embd", "--vocab-size", "--max-seq-len"};
  for (size_t i = 0; i < sizeof kFlags / sizeof *kFlags; ++i)
    if (strcmp(flag, kFlags[i]) == 0) return 1;
  return 0;
}

static void parse_args(Options* o, int argc, char** argv) {
  memset(o, 0, sizeof *o);
  o->resume = 1;
  o->steps = 20;
  if (argc < 2 || strcmp(argv[1], "train") != 0) die("usage: contract_trainer train [flags] (see the source)");
  // The config first, so that flags override it wherever they appear.
  for (int i = 2; i + 1 < argc; ++i)
    if (strcmp(argv[i], "--config") == 0) read_config(o, o->config_path = argv[i + 1]);
  for (int i = 2; i < argc; ++i) {
    const char* flag = argv[i];
    if (i + 1 >= argc) die("flag %s needs a value", flag);
    const char* v = argv[++i];
    if (strcmp(flag, "--config") == 0) {
    } else if (strcmp(flag, "--out") == 0) {
      o->run_dir = v;
    } else if (strcmp(flag, "--resume") == 0) {
      if (strcmp(v, "auto") != 0 && strcmp(v, "never") != 0) die("--resume must be auto or never, got %s", v);
      o->resume = strcmp(v, "auto") == 0;
    } else if (strcmp(flag, "--save-every") == 0) {
      o->save_every = atoi(v);
    } else if (strcmp(flag, "--exit-after-minutes") == 0) {
      o->exit_after_minutes = atof(v);
    } else if (strcmp(flag, "--steps") == 0) {
      o->steps = atoi(v);
    } else if (strcmp(flag, "--step-ms") == 0) {
      o->step_ms = atoi(v);
    } else if (strcmp(flag, "--save-ms") == 0) {
      o->save_ms = atoi(v);
    } else if (is_model_flag(flag)) {
      // Model overrides: --n-layer 4 -> [model] n_layer=4.
      char key[64];
      snprintf(key, sizeof key, "%s", flag + 2);
      for (char* c = key; *c; ++c)
        if (*c == '-') *c = '_';
      set_model_key(o, key, v);
    } else {
      die("unknown flag %s", flag);
    }
  }
  if (!o->run_dir) die("--out RUN_DIR is required");
  if (o->save_every <= 0) die("--save-every must be > 0");
  if (o->steps <= 0) die("steps must be > 0");
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);  // a stop signal may cut it short; that is fine
}

static void make_dir(const char* path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir %s: %s", path, strerror(errno));
}

// Writes text to path through path.tmp + rename, so readers never see a partial file.
static void write_atomic(const char* path, const char* text) {
  char tmp[kPathMax];
  format_path(tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) die("write %s: %s", tmp, strerror(errno));
  if (rename(tmp, path) != 0) die("rename %s: %s", tmp, strerror(errno));
}

static void write_run_config(const Options* o, int nranks) {
  char path[kPathMax], text[8192];
  format_path(path, "%s/run_config.ini", o->run_dir);
  if (access(path, F_OK) == 0) return;
  int n = snprintf(text, sizeof text, "[model]\n");
  for (int i = 0; i < o->n_model; ++i)
    n += snprintf(text + n, sizeof text - n, "%s=%s\n", o->model[i].key, o->model[i].value);
  snprintf(text + n, sizeof text - n, "\n[train]\nsteps=%d\nsave_every=%d\nranks=%d\n", o->steps, o->save_every, nranks);
  write_atomic(path, text);
}

static void write_progress(const Options* o, int step) {
  char path[kPathMax], text[128];
  format_path(path, "%s/progress/rank_%d.txt", o->run_dir, g_rank);
  snprintf(text, sizeof text, "step=%d time=%ld\n", step, (long)time(NULL));
  write_atomic(path, text);
}

static void save_checkpoint(const Options* o, int step, int nranks, const double* w) {
  char final_dir[kPathMax], tmp_dir[kPathMax], path[kPathMax];
  format_path(final_dir, "%s/checkpoints/step_%08d", o->run_dir, step);
  format_path(tmp_dir, "%s.tmp", final_dir);
  int exists = g_rank == 0 && access(final_dir, F_OK) == 0;
  MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (exists) return;  // resumed at this step and stopped again at once
  if (g_rank == 0) make_dir(tmp_dir);
  MPI_Barrier(MPI_COMM_WORLD);
  format_path(path, "%s/rank_%05d.bin", tmp_dir, g_rank);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(&step, sizeof step, 1, f) != 1 || fwrite(w, sizeof *w, kWeights, f) != kWeights || fclose(f) != 0)
    die("write %s: %s", path, strerror(errno));
  if (o->save_ms > 0) sleep_ms(o->save_ms);
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) {
    char text[256];
    format_path(path, "%s/manifest.txt", tmp_dir);
    snprintf(text, sizeof text, "step=%d\nranks=%d\n", step, nranks);
    write_atomic(path, text);
    if (rename(tmp_dir, final_dir) != 0) die("rename %s: %s", tmp_dir, strerror(errno));
    format_path(path, "%s/checkpoints/latest", o->run_dir);
    snprintf(text, sizeof text, "step_%08d\n", step);
    write_atomic(path, text);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// Returns the step to continue from (0 for a fresh start) and fills w.
static int load_latest(const Options* o, int nranks, double* w) {
  char path[kPathMax], name[256] = "";
  format_path(path, "%s/checkpoints/latest", o->run_dir);
  FILE* f = o->resume ? fopen(path, "r") : NULL;
  if (!f) return 0;
  if (!fgets(name, sizeof name, f)) die("%s is empty", path);
  fclose(f);
  int step = 0, saved_ranks = 0;
  format_path(path, "%s/checkpoints/%s/manifest.txt", o->run_dir, trim(name));
  f = fopen(path, "r");
  if (!f || fscanf(f, "step=%d\nranks=%d", &step, &saved_ranks) != 2) die("cannot read %s", path);
  fclose(f);
  if (saved_ranks != nranks) die("%s was saved by %d ranks, this run has %d", path, saved_ranks, nranks);
  format_path(path, "%s/checkpoints/%s/rank_%05d.bin", o->run_dir, name, g_rank);
  f = fopen(path, "rb");
  int file_step = -1;
  if (!f || fread(&file_step, sizeof file_step, 1, f) != 1 || fread(w, sizeof *w, kWeights, f) != kWeights)
    die("cannot read %s", path);
  fclose(f);
  if (file_step != step) die("%s holds step %d, manifest says %d", path, file_step, step);
  return step;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  Options o;
  parse_args(&o, argc, argv);
  char path[kPathMax];
  if (g_rank == 0) {
    make_dir(o.run_dir);
    format_path(path, "%s/checkpoints", o.run_dir);
    make_dir(path);
    format_path(path, "%s/progress", o.run_dir);
    make_dir(path);
    write_run_config(&o, nranks);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  double w[kWeights], g[kWeights], local[kWeights];
  for (int i = 0; i < kWeights; ++i) w[i] = 0.5 + 0.1 * i;  // replicas start equal
  int step = load_latest(&o, nranks, w);
  if (g_rank == 0) printf("contract_trainer: %d ranks, starting at step %d of %d\n", nranks, step, o.steps);
  fflush(stdout);
  const double start = MPI_Wtime();

  while (step < o.steps) {
    if (o.step_ms > 0) sleep_ms(o.step_ms);
    for (int i = 0; i < kWeights; ++i) local[i] = sin(w[i] * (step + 1) + 0.37 * g_rank + i);
    MPI_Allreduce(local, g, kWeights, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (int i = 0; i < kWeights; ++i) w[i] -= 0.01 * g[i] / nranks;
    ++step;
    write_progress(&o, step);
    if (step % o.save_every == 0 && step < o.steps) save_checkpoint(&o, step, nranks, w);
    int stop = g_stop_signal != 0 || (o.exit_after_minutes > 0 && MPI_Wtime() - start >= 60.0 * o.exit_after_minutes);
    MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (stop && step < o.steps) {
      save_checkpoint(&o, step, nranks, w);
      if (g_rank == 0) printf("contract_trainer: stop requested, saved step %d, exit %d\n", step, kExitSavedRequeue);
      fflush(stdout);
      MPI_Finalize();
      return kExitSavedRequeue;
    }
  }
  save_checkpoint(&o, step, nranks, w);
  if (g_rank == 0) printf("contract_trainer: finished at step %d\n", step);
  MPI_Finalize();
  return kExitOk;
}
