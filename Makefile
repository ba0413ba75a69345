# gatewayd build, test and lab targets.
#
# Kernel tests, benchmarks and the demo need root and the peer tools below:
# `make deps` installs them (Debian/Ubuntu). Everything kernel-related runs in
# network namespaces that the tests create and remove (package lab).

GO       ?= go
FUZZTIME ?= 20s

# Debian packages for the lab: namespaces and nftables, the DHCP and DNS
# clients the tests drive, the peers the benchmarks compare against, promtool
# (package prometheus) to lint /metrics and chromium to load the status page.
DEPS_PKGS := iproute2 nftables dnsutils udhcpc isc-dhcp-client dhcpcd-base \
	iputils-arping tcpdump dnsmasq-base unbound kea-dhcp4-server kea-admin \
	dnsperf procps util-linux prometheus chromium
# One binary per package above, to tell whether they are all installed.
DEPS_BINS := ip nft dig udhcpc dhclient dhcpcd arping tcpdump dnsmasq unbound \
	kea-dhcp4 perfdhcp dnsperf sysctl unshare promtool chromium

.PHONY: build deps test bench demo fuzz clean

build:
	$(GO) build -o bin/gatewayd ./cmd/gatewayd

# Outside CI, skip quickly when every binary is there. In CI always update
# and install. policy-rc.d (exit 101) stops Debian from starting the
# daemons it installs (unbound, kea) on this machine; it is written only if
# absent, and removed again afterwards if this target wrote it.
deps:
	@set -eu; \
	missing=""; \
	for b in $(DEPS_BINS); do \
		PATH="$$PATH:/usr/sbin:/sbin" command -v "$$b" >/dev/null 2>&1 || missing="$$missing $$b"; \
	done; \
	if [ -z "$${CI:-}" ] && [ -z "$$missing" ]; then \
		echo "deps: all present"; exit 0; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: run as root to install:$${missing:- (CI is set)}" >&2; exit 1; \
	fi; \
	wrote=""; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\n# written by gatewayd make deps: start no daemon on install\nexit 101\n' >/usr/sbin/policy-rc.d; \
		chmod 755 /usr/sbin/policy-rc.d; wrote=1; \
	fi; \
	trap '[ -z "$$wrote" ] || rm -f /usr/sbin/policy-rc.d' EXIT; \
	apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS_PKGS)

# Tests and benchmarks run inside a network namespace of their own
# (unshare --net) that holds nothing but a loopback: the labs they build
# hang off it, and a socket opened by mistake outside a lab has no route to
# anywhere, nor any interface, route, sysctl or ruleset of this machine to
# change. Modules are fetched before, with the network up (go vet builds
# every package and its tests); inside, GOPROXY=off.
ISOLATED := GOPROXY=off unshare --net --

test: deps
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(ISOLATED) $(GO) test -count=1 -timeout 20m ./...

bench: deps
	$(GO) vet ./...
	$(ISOLATED) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

demo: deps build
	./bin/gatewayd demo

# go test -fuzz takes one target in one package at a time.
fuzz:
	@set -eu; \
	grep -rl --include='*_test.go' --exclude-dir=.git '^func Fuzz' . | sort | while read -r file; do \
		dir="$$(dirname "$$file")"; \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
			echo "fuzz: $$dir $$name for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$dir"; \
		done; \
	done

clean:
	rm -rf bin
