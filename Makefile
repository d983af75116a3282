# shardlm: the two quick-start commands are `make demo` and `make test`.
# Each installs missing Debian packages (root, apt-get), configures, builds, then runs.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo demo-llama test bench clean

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

test: build
	./scripts/install-slurm.sh
	./scripts/test-venv.sh $(BUILD_DIR)
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 1200

clean:
	rm -rf $(BUILD_DIR)
