# berth: `make demo` shows it, `make test` proves it. Both install what they
# need from Debian first. Run as root.

SHELL := /bin/bash
# Builds live outside the clone so fresh clones (CI) reuse them.
CARGO_TARGET_DIR ?= /var/tmp/berth-target
export CARGO_TARGET_DIR
BERTH := $(CARGO_TARGET_DIR)/debug/berth
BERTH_RELEASE := $(CARGO_TARGET_DIR)/release/berth
ROOTFS := $(CURDIR)/.build/busybox
APT_PACKAGES := busybox-static libseccomp-dev pkg-config docker-registry skopeo apache2-utils nftables libelf-dev zlib1g-dev etcd-server protobuf-compiler systemd
BENCH_PACKAGES := runc crun umoci debootstrap wrk
# The cgroup v2 VM (scripts/cgroup2-vm): QEMU and kmod for its module autoload.
CGROUP2_PACKAGES := qemu-system-x86 kmod

.PHONY: all deps api-deps bench-deps build images bench-images test test-cgroup2 lint demo demo-cluster bench clean fuzz-deps fuzz-build fuzz fuzz-smoke chaos

all: build

# Install only what is missing; `apt-get update` once, first. $(2): more
# apt-get install options.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

# The ECS API's clients for the tests and the benchmark: Debian's aws-cli v2
# (/usr/bin/aws) and a virtualenv with PyPI's aws-cli v1, boto3 and
# moto[server] (the emulator `make bench` compares against). Debian's own
# python3 makes the venv (python3-venv); a stamp keeps it quick when done.
VENV := $(CURDIR)/.build/venv
API_PY_PACKAGES := awscli boto3 'moto[server]'

api-deps: $(VENV)/.api-deps

$(VENV)/.api-deps:
	$(call apt_install,python3-venv awscli)
	@[ -x $(VENV)/bin/python ] || /usr/bin/python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q $(API_PY_PACKAGES)
	@$(VENV)/bin/aws --version && /usr/bin/aws --version
	@touch $@

bench-deps: deps
	$(call apt_install,$(BENCH_PACKAGES))

build: deps
	cargo build --workspace

# The busybox root filesystem (from busybox-static), and the busybox image
# berth builds from it, exported as an OCI layout for other tools. The tests
# build and push their own copies (into their own stores and registries).
images: build
	@[ -x $(ROOTFS)/bin/busybox ] || scripts/busybox-rootfs.sh $(ROOTFS)
	@rm -rf .build/image-root .build/busybox-oci
	@$(BERTH) --root $(CURDIR)/.build/image-root image build-rootfs $(ROOTFS) --tag busybox:latest --cmd sh >/dev/null
	@$(BERTH) --root $(CURDIR)/.build/image-root image export busybox oci:$(CURDIR)/.build/busybox-oci:latest >/dev/null
	@rm -rf .build/image-root
	@echo "busybox rootfs: $(ROOTFS); OCI layout: .build/busybox-oci"

# A larger 3-layer image (Debian minbase) for the image benchmarks.
bench-images: bench-deps
	scripts/debian-layers.sh $(CURDIR)/.build/debian

lint: deps
	cargo fmt --all --check
	cd fuzz && cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings

test: lint build images api-deps
	@if cargo nextest --version >/dev/null 2>&1; then \
		BERTH_BIN=$(BERTH) BERTH_TEST_ROOTFS=$(ROOTFS) cargo nextest run --workspace --no-fail-fast; \
	else \
		BERTH_BIN=$(BERTH) BERTH_TEST_ROOTFS=$(ROOTFS) cargo test --workspace --no-fail-fast; \
	fi
	$(MAKE) fuzz-smoke

# Fuzzing with cargo-fuzz (libFuzzer) on the stable toolchain: no sanitizer
# (safe Rust), debug assertions on (overflow panics). Targets in
# fuzz/fuzz_targets; seeds in fuzz/seeds; corpora and crashes under
# FUZZ_DIR. `make fuzz` runs each target FUZZ_SECONDS; `make fuzz-smoke`
# (part of `make test`) 30 s each, failing on any crash or hang.
FUZZ_TARGETS := taskdef_spec unpack_layer image_reference cluster_query
FUZZ_SECONDS ?= 300
export FUZZ_DIR ?= /var/tmp/berth-fuzz
export FUZZ_BUILD_DIR ?= /var/tmp/berth-fuzz-target

fuzz-deps:
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz-build: fuzz-deps
	cd fuzz && cargo fuzz build -s none -a --target-dir $(FUZZ_BUILD_DIR)

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	scripts/fuzz.sh 30 $(FUZZ_TARGETS)

# The cgroup-dependent tests again on a pure cgroup v2 kernel, in a VM (this
# machine is cgroup v1): scripts/cgroup2-vm/test.sh says which tests. Without
# recommends; qemu-utils (qemu-img) comes back if QEMU's packages displaced it.
test-cgroup2: build images
	$(call apt_install,$(CGROUP2_PACKAGES),--no-install-recommends)
	$(call apt_install,qemu-utils,--no-install-recommends)
	@if cargo nextest --version >/dev/null 2>&1; then \
		BERTH_BIN=$(BERTH) BERTH_TEST_ROOTFS=$(ROOTFS) scripts/cgroup2-vm/test.sh; \
	else \
		echo "test-cgroup2 needs cargo-nextest" >&2; exit 1; \
	fi

# kill -9 at random moments while tasks start and stop, then gc: nothing
# may be left. BERTH_CHAOS_TRIALS (60 here, 12 in `make test`) and
# BERTH_CHAOS_SEED (printed; random when unset) replay a run.
CHAOS_TRIALS ?= 60
chaos: build images
	BERTH_CHAOS_TRIALS=$${BERTH_CHAOS_TRIALS:-$(CHAOS_TRIALS)} BERTH_BIN=$(BERTH) BERTH_TEST_ROOTFS=$(ROOTFS) \
		cargo test -p berth-tests --test chaos -- --nocapture

demo: build images
	BERTH=$(BERTH) ROOTFS=$(ROOTFS) scripts/demo.sh

# Three hosts (network namespaces on an underlay bridge) on etcd, a spread
# service, a host killed and its tasks replaced on the others.
demo-cluster: build images
	BERTH=$(BERTH) ROOTFS=$(ROOTFS) scripts/demo-cluster.sh

bench: bench-deps api-deps images bench-images
	cargo build --release -p berth-cli
	cargo build -p berth-tests --bin bench-cluster
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench.py
	BERTH=$(BERTH_RELEASE) LAYERS=$(CURDIR)/.build/debian python3 scripts/bench_images.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_tasks.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_density.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_network.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_services.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_metadata.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) CLUSTER_BENCH=$(dir $(BERTH))bench-cluster python3 scripts/bench_cluster.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) VENV=$(VENV) $(VENV)/bin/python scripts/bench_api.py

# `make install`: berth into PREFIX/bin, its bash completion into
# BASH_COMPLETION_DIR (zsh's and fish's under PREFIX/share), its man pages
# into PREFIX/share/man/man1, all below DESTDIR (for packages). It builds
# the release binary, or installs INSTALL_BIN, one already built.
PREFIX ?= /usr/local
DESTDIR ?=
BASH_COMPLETION_DIR ?= /usr/share/bash-completion/completions
INSTALL_BIN ?=
.PHONY: install
install:
	@if [ -z "$(INSTALL_BIN)" ]; then cargo build --release -p berth-cli; fi
	@bin="$(or $(INSTALL_BIN),$(BERTH_RELEASE))"; \
	root="$(DESTDIR)"; share="$$root$(PREFIX)/share"; \
	set -e; \
	install -d "$$root$(PREFIX)/bin" "$$root$(BASH_COMPLETION_DIR)" "$$share/zsh/site-functions" \
		"$$share/fish/vendor_completions.d" "$$share/man/man1"; \
	install -m 0755 "$$bin" "$$root$(PREFIX)/bin/berth"; \
	"$$bin" completion bash > "$$root$(BASH_COMPLETION_DIR)/berth"; \
	"$$bin" completion zsh > "$$share/zsh/site-functions/_berth"; \
	"$$bin" completion fish > "$$share/fish/vendor_completions.d/berth.fish"; \
	"$$bin" man --dir "$$share/man/man1"; \
	chmod 0644 "$$root$(BASH_COMPLETION_DIR)/berth" "$$share/zsh/site-functions/_berth" \
		"$$share/fish/vendor_completions.d/berth.fish" "$$share"/man/man1/berth*.1; \
	echo "installed $$root$(PREFIX)/bin/berth, its completions and man pages"

clean:
	rm -rf .build
