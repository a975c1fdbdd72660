# berth: `make demo` shows it, `make test` proves it. Both install what they
# need from Debian first. Run as root.

SHELL := /bin/bash
# Builds live outside the clone so fresh clones (CI) reuse them.
CARGO_TARGET_DIR ?= /var/tmp/berth-target
export CARGO_TARGET_DIR
BERTH := $(CARGO_TARGET_DIR)/debug/berth
BERTH_RELEASE := $(CARGO_TARGET_DIR)/release/berth
ROOTFS := $(CURDIR)/.build/busybox
APT_PACKAGES := busybox-static libseccomp-dev pkg-config docker-registry skopeo apache2-utils nftables
BENCH_PACKAGES := runc crun umoci debootstrap wrk

.PHONY: all deps bench-deps build images bench-images test lint demo bench chaos clean

all: build

# Install only what is missing; `apt-get update` once, first.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

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
	cargo clippy --workspace --all-targets -- -D warnings

test: lint build images
	@if cargo nextest --version >/dev/null 2>&1; then \
		BERTH_BIN=$(BERTH) BERTH_TEST_ROOTFS=$(ROOTFS) cargo nextest run --workspace --no-fail-fast; \
	else \
		BERTH_BIN=$(BERTH) BERTH_TEST_ROOTFS=$(ROOTFS) cargo test --workspace --no-fail-fast; \
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

bench: bench-deps images bench-images
	cargo build --release -p berth-cli
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench.py
	BERTH=$(BERTH_RELEASE) LAYERS=$(CURDIR)/.build/debian python3 scripts/bench_images.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_tasks.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_network.py
	BERTH=$(BERTH_RELEASE) ROOTFS=$(ROOTFS) python3 scripts/bench_services.py

clean:
	rm -rf .build
