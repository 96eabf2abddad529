#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes a file's bytes as a C array: embed.py INPUT OUTPUT SYMBOL (used by src/meson.build).
import sys

src, dst, sym = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, 'rb').read()
with open(dst, 'w') as out:
    out.write('/* Generated from %s by src/ops/embed.py; do not edit. */\n' % src.split('/')[-1])
    out.write('#include <stddef.h>\n\n')
    out.write('const char %s[] = {\n' % sym)
    for i in range(0, len(data), 16):
        # char may be signed: bytes above 0x7f are written as their signed value
        out.write('    ' + ', '.join(str(b if b < 128 else b - 256) for b in data[i:i + 16]) + ',\n')
    out.write('    0\n};\n')
    out.write('const size_t %s_len = %d;\n' % (sym, len(data)))
