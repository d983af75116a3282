# shardlm: the two quick-start commands are `make demo` and `make test`.
# Each installs missing Debian packages (root, apt-get), configures, builds, then runs.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo demo-llama demo-1b test test-sanitize bench clean

all: build

deps:
	./scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

demo: build
	./scripts/demo.sh $(BUILD_DIR)

# The same pipeline with a small Llama (configs/demo-llama.ini), into runs/demo-llama/.
demo-llama: build
	DEMO_CONFIG=$(CURDIR)/configs/demo-llama.ini DEMO_NAME=demo-llama ./scripts/demo.sh $(BUILD_DIR)

# A 1.04 B-parameter Llama on this machine with the layout `shardlm plan` picks (half an hour
# on 2 cores; not part of `make test`), into runs/demo-1b/.
demo-1b: build
	./scripts/demo-1b.sh $(BUILD_DIR)

test: build
	./scripts/install-slurm.sh
	./scripts/test-venv.sh $(BUILD_DIR)
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 1200

# The unit, MPI, CLI and fuzz tests under AddressSanitizer + UndefinedBehaviorSanitizer, in
# their own clang build (clang brings libFuzzer; CUDA is left out). docs/sanitizers.md.
SANITIZE_BUILD_DIR ?= build-sanitize
test-sanitize: deps
	cmake -S . -B $(SANITIZE_BUILD_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DSHARDLM_SANITIZE=ON -DSHARDLM_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build $(SANITIZE_BUILD_DIR) -j$(JOBS)
	./scripts/test-sanitize.sh $(SANITIZE_BUILD_DIR) $(JOBS)

clean:
	rm -rf $(BUILD_DIR)
