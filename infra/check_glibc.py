#!/usr/bin/env python3
"""The newest glibc symbol version an ELF binary needs, against a ceiling.

    check_glibc.py [--max 2.34] BINARY_OR_ZIP...

Lambda's provided.al2023 runtime is Amazon Linux 2023, whose glibc is 2.34
(glibc-2.34-*.amzn2023); a bootstrap that needs GLIBC_2.35 or later fails at
start with "version `GLIBC_2.xx' not found". This reads the ELF's version
needs (.gnu.version_r) directly, for any architecture, with no binutils.
A zip is checked through its `bootstrap`. Exit 1 when any file needs more.
"""

import argparse
import io
import struct
import sys
import zipfile
from pathlib import Path

AMAZON_LINUX_2023_GLIBC = "2.34"
SHT_GNU_VERNEED = 0x6FFFFFFE


class NotElf(ValueError):
    pass


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def needed_versions(data):
    """Every version name the ELF needs from its shared libraries (e.g. GLIBC_2.17)."""
    if data[:4] != b"\x7fELF":
        raise NotElf("not an ELF file")
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x2E)
    sections = []
    for i in range(shnum):
        base = shoff + i * shentsize
        if is64:
            _name, sh_type, _flags, _addr, offset, size, link, info = struct.unpack_from(
                endian + "IIQQQQII", data, base
            )
        else:
            _name, sh_type, _flags, _addr, offset, size, link, info = struct.unpack_from(
                endian + "IIIIIIII", data, base
            )
        sections.append((sh_type, offset, size, link, info))
    names = set()
    for sh_type, offset, _size, link, count in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][1]
        entry = offset
        for _ in range(count):
            _version, cnt, _file, aux, nxt = struct.unpack_from(endian + "HHIII", data, entry)
            at = entry + aux
            for _ in range(cnt):
                _hash, _flags, _other, name, aux_next = struct.unpack_from(endian + "IHHII", data, at)
                start = strtab + name
                end = data.index(b"\0", start)
                names.add(data[start:end].decode("ascii", "replace"))
                if not aux_next:
                    break
                at += aux_next
            if not nxt:
                break
            entry += nxt
    return names


def max_glibc(data):
    """The newest GLIBC_x.y needed, as text, or None for no glibc symbols."""
    versions = [n[len("GLIBC_"):] for n in needed_versions(data) if n.startswith("GLIBC_2")]
    return max(versions, key=version_tuple) if versions else None


def read_binary(path):
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            return z.read("bootstrap")
    return path.read_bytes()


def check(path, ceiling=AMAZON_LINUX_2023_GLIBC):
    """(ok, newest needed or None)."""
    newest = max_glibc(read_binary(path))
    return (newest is None or version_tuple(newest) <= version_tuple(ceiling)), newest


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", default=AMAZON_LINUX_2023_GLIBC, help="newest glibc allowed (Amazon Linux 2023: 2.34)")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    failed = False
    for f in args.files:
        try:
            ok, newest = check(f, args.max)
        except (NotElf, OSError, KeyError, zipfile.BadZipFile, struct.error) as e:
            print(f"FAIL {f}: {e}")
            failed = True
            continue
        verdict = "ok  " if ok else "FAIL"
        print(f"{verdict} {f}: needs GLIBC {newest or 'nothing'} (ceiling {args.max})")
        failed |= not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
