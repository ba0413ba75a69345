# gatewayd build, test and lab targets.
#
# Kernel tests, benchmarks and the demo need root and the peer tools below:
# `make deps` installs them (Debian/Ubuntu). Everything kernel-related runs in
# network namespaces that the tests create and remove (package lab).

GO       ?= go
FUZZTIME ?= 20s
# Build products: the binary, the package tree and the .deb.
OUT      ?= bin

# The release is the newest entry of the package's changelog; the binary
# reports it (gatewayd version) with the source revision Go records.
VERSION  ?= $(shell head -n1 contrib/deb/changelog | cut -d' ' -f2 | tr -d '()')
# Go stamps the git revision when it can read the checkout; where git cannot
# (no checkout, another owner), the build goes on without it.
BUILDVCS := $(shell git rev-parse --git-dir >/dev/null 2>&1 && echo auto || echo false)
# No cgo (the pure Go resolver: no libc but the loader), position
# independent (ASLR), stripped, reproducible.
GOBUILD  := CGO_ENABLED=0 $(GO) build -buildmode=pie -trimpath -buildvcs=$(BUILDVCS) \
	-ldflags '-s -w -X main.version=$(VERSION)'

# make install: the binary under PREFIX, the unit where systemd looks, the
# example config only if there is none, the state directory root's only.
# The config and state paths are fixed: the binary and the unit name them.
PREFIX   ?= /usr
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR  ?= /lib/systemd/system
DESTDIR  ?=

# Debian packages for the lab: namespaces and nftables, the DHCP and DNS
# clients the tests drive, the peers the benchmarks compare against, promtool
# (package prometheus) to lint /metrics, chromium to load the status page, and
# lintian and systemd-analyze for the packaging tests, and a C compiler for
# the DNS benchmark's echo responder (the kernel's floor for one query).
DEPS_PKGS := iproute2 nftables dnsutils udhcpc isc-dhcp-client dhcpcd-base \
	iputils-arping tcpdump dnsmasq-base unbound kea-dhcp4-server kea-admin \
	dnsperf procps util-linux prometheus chromium lintian systemd gcc
# One binary per package above, to tell whether they are all installed.
DEPS_BINS := ip nft dig udhcpc dhclient dhcpcd arping tcpdump dnsmasq unbound \
	kea-dhcp4 perfdhcp dnsperf sysctl unshare promtool chromium lintian systemd-analyze cc

.PHONY: build install deb man deps test bench demo fuzz clean

build:
	$(GOBUILD) -o $(OUT)/gatewayd ./cmd/gatewayd

install: build
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)/etc/gatewayd
	install -d -m 0700 $(DESTDIR)/var/lib/gatewayd
	install -m 0755 $(OUT)/gatewayd $(DESTDIR)$(SBINDIR)/gatewayd
	sed 's|/usr/sbin/gatewayd|$(SBINDIR)/gatewayd|g' 'contrib/gatewayd@.service' >$(OUT)/gatewayd@.service
	install -m 0644 $(OUT)/gatewayd@.service '$(DESTDIR)$(UNITDIR)/gatewayd@.service'
	gzip -9n <docs/man/gatewayd.8 >$(OUT)/gatewayd.8.gz
	gzip -9n <docs/man/gateway.toml.5 >$(OUT)/gateway.toml.5.gz
	install -m 0644 $(OUT)/gatewayd.8.gz $(DESTDIR)$(MANDIR)/man8/gatewayd.8.gz
	install -m 0644 $(OUT)/gateway.toml.5.gz $(DESTDIR)$(MANDIR)/man5/gateway.toml.5.gz
	install -m 0644 contrib/gatewayd.bash-completion $(DESTDIR)$(BASHCOMPDIR)/gatewayd
	@if [ -e $(DESTDIR)/etc/gatewayd/gateway.toml ]; then \
		echo "install: keeping the existing $(DESTDIR)/etc/gatewayd/gateway.toml"; \
	else \
		install -m 0644 etc/gateway.toml $(DESTDIR)/etc/gatewayd/gateway.toml; \
	fi

# man: write gateway.toml(5)'s key reference from the schema (the doc and
# default tags in package config); the prose around it is written by hand.
# cmd/gatewayd's tests fail when the page checked in differs. Read a page
# with man -l docs/man/gateway.toml.5.
man:
	$(GO) run ./cmd/gatewayd/internal/mankeys docs/man/gateway.toml.5

# deb: the same tree as make install, with the package's metadata, built by
# dpkg-deb (the Go toolchain is not a Debian package here, so debhelper's
# build-dependency checks and dh-golang's GOPATH build do not fit). The
# maintainer scripts neither enable nor start the unit; lintian, when
# installed (make deps), must report no error.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_ROOT := $(OUT)/deb/gatewayd_$(VERSION)_$(DEB_ARCH)
DEB      := $(OUT)/gatewayd_$(VERSION)_$(DEB_ARCH).deb

deb:
	rm -rf $(DEB_ROOT)
	$(MAKE) install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr UNITDIR=/lib/systemd/system
	install -d -m 0755 $(DEB_ROOT)/DEBIAN $(DEB_ROOT)/usr/share/doc/gatewayd
	install -m 0644 contrib/deb/copyright $(DEB_ROOT)/usr/share/doc/gatewayd/copyright
	gzip -9n <contrib/deb/changelog >$(DEB_ROOT)/usr/share/doc/gatewayd/changelog.gz
	chmod 0644 $(DEB_ROOT)/usr/share/doc/gatewayd/changelog.gz
	install -m 0644 contrib/deb/conffiles $(DEB_ROOT)/DEBIAN/conffiles
	install -m 0755 contrib/deb/postinst contrib/deb/prerm contrib/deb/postrm $(DEB_ROOT)/DEBIAN/
	install -d -m 0755 $(DEB_ROOT)/usr/share/lintian/overrides
	install -m 0644 contrib/deb/lintian-overrides $(DEB_ROOT)/usr/share/lintian/overrides/gatewayd
	cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
		| sort -z | xargs -0 md5sum >DEBIAN/md5sums
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
		-e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
		-e "s|@MAINTAINER@|$$(sed -n 's/^ -- \(.*>\)  .*/\1/p' contrib/deb/changelog | head -1)|" \
		contrib/deb/control >$(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group --build $(DEB_ROOT) $(DEB)
	@if command -v lintian >/dev/null; then \
		echo "lintian $(DEB)"; lintian --fail-on error $(DEB); \
	else \
		echo "deb: lintian is not installed (make deps installs it): not checked"; \
	fi

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
	rm -rf $(OUT)
