#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# `meson install` into a staging directory, then the installed tree on its own: every file meson
# says it installs is there, the installed tally runs (--version, --check-config of every installed
# example) with no path into the build tree, the man page renders without a warning, the unit's
# ExecStart names the installed binary, and every path the Containerfile copies out of its staging
# directory exists here too.
#   test_install.py MESON BUILD_DIR SOURCE_DIR VERSION   (tests/meson.build passes them)
import json
import os
import re
import shutil
import subprocess
import sys

failures = []


def check(ok, what):
    print(('ok   ' if ok else 'FAIL ') + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def run(cmd, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith('LD_')}  # no help finding libraries
    return subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)


def main():
    meson, build, source, version = sys.argv[1:5]
    build, source = os.path.abspath(build), os.path.abspath(source)
    dest = os.path.join(build, 'install-test-root')
    shutil.rmtree(dest, ignore_errors=True)

    r = run([meson, 'install', '-C', build, '--no-rebuild', '--destdir', dest])
    if not check(r.returncode == 0, 'meson install --destdir %s' % dest):
        print(r.stdout, r.stderr)
        return 1

    opts = {o['name']: o['value'] for o in json.loads(run([meson, 'introspect', '--buildoptions', build]).stdout)}
    prefix = opts['prefix']
    bindir = os.path.join(prefix, opts['bindir'])
    installed = json.loads(run([meson, 'introspect', '--installed', build]).stdout)
    staged = lambda p: dest + p  # an absolute install path inside the staging directory

    # Everything meson says it installs, and the pieces a user needs among them.
    for src, path in sorted(installed.items()):
        check(os.path.exists(staged(path)), 'installed: %s' % path)
    paths = set(installed.values())
    tally = os.path.join(bindir, 'tally')
    mandir = os.path.join(prefix, opts['mandir'])
    docdir = os.path.join(prefix, opts['datadir'], 'doc', 'tally')
    examples = [os.path.join(docdir, 'examples', n)
                for n in ('wordcount.properties', 'console.properties', 'example-full.properties',
                          'parquet.properties', 'files.properties', 'windows.properties')]
    for p in [tally, os.path.join(mandir, 'man1', 'tally.1'), os.path.join(docdir, 'README.md')] + examples:
        check(p in paths, 'meson installs %s' % p)
    unit = next((p for p in paths if p.endswith('/tally@.service')), None)
    check(unit is not None, 'meson installs tally@.service')
    check(any(p.endswith('/sysusers.d/tally.conf') for p in paths), 'meson installs sysusers.d/tally.conf')
    for absent in ('tally-gen', 'tally-read'):
        check(os.path.join(bindir, absent) not in paths, '%s is not installed (a benchmark tool)' % absent)

    # The installed binary on its own: no path into the build tree, its libraries found as installed.
    exe = staged(tally)
    dyn = run(['readelf', '-d', exe]).stdout
    rpaths = re.findall(r'\((?:RPATH|RUNPATH)\).*\[(.*)\]', dyn)
    check(not any(os.path.realpath(d).startswith(os.path.realpath(build)) for rp in rpaths for d in rp.split(':')),
          'installed tally has no rpath into the build tree (rpath: %s)' % (rpaths or 'none'))
    r = run([exe, '--version'])
    check(r.returncode == 0 and re.match(r'^tally %s \(librdkafka \d+\.\d+\.\d+' % re.escape(version), r.stdout),
          'installed tally --version: %r %s' % (r.stdout.strip(), r.stderr.strip()))
    for ex in examples:
        r = run([exe, '--config', staged(ex), '--check-config'])
        check(r.returncode == 0 and 'configuration OK' in r.stderr and 'application.id' in r.stdout,
              'installed tally --check-config %s: exit %d %s' % (ex, r.returncode, r.stderr.strip()[-200:]))
    # ...and the same binary still refuses a bad file (the check above can fail).
    bad = os.path.join(dest, 'bad.properties')
    with open(bad, 'w') as f:
        f.write('bootstrap.servers=localhost:9092\napplication.id=x\ninput.topic=t\noutput.topic=o\nworkers=-1\n')
    r = run([exe, '--config', bad, '--check-config'])
    check(r.returncode == 2 and 'workers' in r.stderr, 'installed tally refuses workers=-1 with exit 2')

    # The man page renders, without a groff warning, with every section.
    page = staged(os.path.join(mandir, 'man1', 'tally.1'))
    r = run(['groff', '-man', '-Tutf8', '-ww', page])
    text = re.sub(r'.\x08', '', r.stdout)
    check(r.returncode == 0 and not r.stderr, 'groff renders tally.1 without warnings %s' % r.stderr.strip())
    for section in ('SYNOPSIS', 'OPTIONS', 'CONFIGURATION', 'EXIT STATUS', 'SIGNALS', 'FILES'):
        check(section in text, 'tally.1 has %s' % section)
    check('bootstrap.servers' in text and 'transaction.timeout.ms' in text, 'tally.1 lists the keys')

    # The unit starts the binary meson installed.
    if unit:
        with open(staged(unit)) as f:
            m = re.search(r'^ExecStart=(\S+)', f.read(), re.M)
        check(m and m.group(1) == tally, 'tally@.service ExecStart=%s is %s' % (m and m.group(1), tally))

    # The Containerfile copies from its own `meson install --destdir /stage` with --prefix=P: each
    # /stage/P/... path it copies must exist in this staging tree as <prefix>/...
    with open(os.path.join(source, 'Containerfile')) as f:
        cf = f.read().replace('\\\n', ' ')
    m = re.search(r'meson setup \S+ --prefix[= ](\S+)', cf)
    check(m is not None, 'Containerfile: meson setup --prefix found')
    cprefix = m.group(1) if m else '/usr'
    copies = re.findall(r'^COPY\s+--from=build\s+(.+?)\s+(\S+)\s*$', cf, re.M)
    stage_srcs = [s for srcs, _ in copies for s in srcs.split() if s.startswith('/stage/')]
    check(len(stage_srcs) >= 2, 'Containerfile copies %d paths from /stage' % len(stage_srcs))
    for s in stage_srcs:
        rel = s[len('/stage'):]
        ok = rel.startswith(cprefix + '/')
        here = staged(prefix + rel[len(cprefix):]) if ok else None
        check(ok and os.path.exists(here.rstrip('/')), 'Containerfile COPY %s -> %s' % (s, here))
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"', cf, re.M)
    check(entry and entry.group(1) in [d.rstrip('/') for _, d in copies],
          'Containerfile ENTRYPOINT %s is a copied path' % (entry and entry.group(1)))
    for script in re.findall(r'(packaging/container/\S+)', cf):
        check(os.access(os.path.join(source, script), os.X_OK), 'Containerfile runs %s (executable)' % script)
    # What the runtime stage installs: the packages of the installed binary's libraries. A librdkafka
    # of our own (outside the system's library directories) belongs to none: then the script must say so.
    r = run([os.path.join(source, 'packaging/container/runtime-packages'), exe])
    pkgs = r.stdout.split()
    ldd = run(['ldd', exe]).stdout
    rdk = re.search(r'librdkafka\S* => (\S+)', ldd)
    system_rdk = rdk and re.match(r'^(/usr)?/lib(64)?/', rdk.group(1)) and '/local/' not in rdk.group(1)
    if system_rdk:
        check(r.returncode == 0 and any(p.startswith('librdkafka') for p in pkgs) and 'libuv1' in pkgs,
              'runtime-packages of the installed tally: %s %s' % (' '.join(pkgs), r.stderr.strip()))
    else:
        check(r.returncode != 0 and 'no Debian package' in r.stderr,
              'runtime-packages refuses a librdkafka of no package (%s): %s' % (rdk and rdk.group(1), r.stderr.strip()))

    print('%d check(s) failed' % len(failures) if failures else 'all checks passed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
