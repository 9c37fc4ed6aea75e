# Set-up, demo, tests and packaging of cubicweb-haops.
# `make demo` and `make test` work on a fresh Debian 12 machine with Python 3.11.

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
DEMO_PORT ?= 8080

# Debian packages the tests use: the PostgreSQL server the harness starts,
# check_http, msgfmt for the message catalogs, headless Chromium and its
# WebDriver for the browser tests, Squid for the reverse-proxy cache tests and
# the benchmarks, wrk for the benchmarks, Nagios (nagios4-core: the program
# alone, without the web interface) and HAProxy to verify the configurations
# under docs/, Apache (with HAProxy and Squid) to run the configurations that
# `cubicweb-ctl haops-config` writes, and what `make deb` builds with.
DEBIAN_PACKAGES := postgresql monitoring-plugins-basic gettext curl \
	chromium chromium-driver squid wrk nagios4-core haproxy apache2 \
	debhelper dh-python python3-all python3-setuptools dpkg-dev fakeroot

.PHONY: all venv system-packages demo stack test bench deb clean

all: test

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV_PYTHON) setup.py cubicweb_haops/__pkginfo__.py
	$(VENV_PYTHON) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

system-packages:
	@bash tools/install-debian-packages $(DEBIAN_PACKAGES)

demo: venv
	@bash tools/install-debian-packages gettext curl
	@DEMO_PORT=$(DEMO_PORT) VENV=$(VENV) bash tools/demo

# A whole web server on 127.0.0.1 (PostgreSQL, two processes, Squid, HAProxy)
# until Ctrl-C.
stack: system-packages venv
	$(VENV_PYTHON) tools/stack

test: system-packages venv
	$(VENV_PYTHON) -m pytest test

# Benchmarks, measured side by side in one run; the report goes to BENCHMARKS.md.
bench: system-packages venv
	$(VENV_PYTHON) bench/run.py --output BENCHMARKS.md

# dpkg-buildpackage writes the .deb, .buildinfo and .changes files to the
# parent directory: move them into dist/, after removing those of an earlier
# build so that dist/ holds only the package just built.
deb: system-packages
	rm -f dist/*cubicweb-haops_*.deb dist/cubicweb-haops_*.buildinfo dist/cubicweb-haops_*.changes
	dpkg-buildpackage -us -uc -b
	mkdir -p dist
	mv ../*cubicweb-haops_*.deb ../cubicweb-haops_*.buildinfo ../cubicweb-haops_*.changes dist/
	@echo "built: $$(ls dist/*cubicweb-haops_*.deb)"

clean:
	rm -rf $(VENV) .demo build dist *.egg-info .pytest_cache
