#!/usr/bin/env python3
"""Walk an editshard v1 shard front to back, check it, and print an annotated layout.

An independent reader written from spec/FORMAT.md alone, with the Python standard library only
(so zstd-compressed blocks are checked by CRC and length but not decompressed). It exists to
show the spec is implementable, and `crates/format/tests/format/spec_walker.rs` runs it over the golden
vectors (`crates/format/tests/vectors/`).

Usage: walk_shard.py [--quiet] FILE...    exit 0 if every file is a valid shard, 1 otherwise.
"""
import struct
import sys
import zlib

MAGIC = b"\x89ESHARD\n"
TRAILER_MAGIC = b"ESIX"


class Damage(Exception):
    pass


class Walker:
    def __init__(self, data, quiet):
        self.b = data
        self.quiet = quiet

    def note(self, start, end, text):
        if not self.quiet:
            h = self.b[start:end]
            hx = h[:12].hex(" ") + (" …" if len(h) > 12 else "")
            print(f"{start:8d} {end - start:6d}  {hx:<40} {text}")

    def need(self, start, n, what):
        if start + n > len(self.b):
            raise Damage(f"truncated: {what} at byte {start} needs {n} bytes")

    def varint(self, i, what, lo=0, hi=2**64 - 1):
        v, shift, start = 0, 0, i
        for n in range(10):
            self.need(i, 1, what)
            x = self.b[i]
            i += 1
            v |= (x & 0x7F) << shift
            shift += 7
            if x < 0x80:
                if n > 0 and x == 0:
                    raise Damage(f"non-minimal varint for {what} at byte {start}")
                if not lo <= v <= hi or v >= 2**64:
                    raise Damage(f"{what} = {v} out of range at byte {start}")
                return v, i
        raise Damage(f"varint for {what} longer than 10 bytes at byte {start}")

    def u32(self, i, what):
        self.need(i, 4, what)
        return struct.unpack_from("<I", self.b, i)[0]

    def crc(self, start, end, stored, what):
        if zlib.crc32(self.b[start:end]) != stored:
            raise Damage(f"CRC mismatch in {what} at byte {start}")

    def group_table(self, j):
        start = j
        n_records, j = self.varint(j, "n_records", 1, 65535)
        n_blobs, j = self.varint(j, "n_blobs", 0, 65535)
        records, blobs, used = [], [], set()
        for _ in range(n_records):
            id_len, j = self.varint(j, "id length", 1, 4096)
            self.need(j, id_len, "id")
            rid = self.b[j : j + id_len].decode("utf-8")
            j += id_len
            self.need(j, 2, "kind and codec")
            kind, codec = self.b[j], self.b[j + 1]
            if kind > 3 or codec > 1:
                raise Damage(f"unsupported kind {kind} or codec {codec} at byte {j}")
            j += 2
            meta_len, j = self.varint(j, "meta length", 0, 16 << 20)
            meta_crc = self.u32(j, "meta CRC")
            j += 4
            n_refs, j = self.varint(j, "n_refs", 1, 4096)
            refs = []
            for _ in range(n_refs):
                r, j = self.varint(j, "blob reference", 0, n_blobs - 1)
                refs.append(r)
                used.add(r)
            records.append((rid, kind, codec, meta_len, meta_crc, refs))
        for _ in range(n_blobs):
            length, j = self.varint(j, "blob length", 1, 1 << 30)
            blobs.append((length, self.u32(j, "blob CRC")))
            j += 4
        if len(used) != n_blobs:
            raise Damage(f"unreferenced blob in the group table at byte {start}")
        return records, blobs, j

    def message_fields(self, start, end):
        i = start
        while i < end:
            tag, k = self.varint(i, "field tag", 1, 2**32 - 1)
            length, k = self.varint(k, "field length", 0, end - k)
            self.note(i, k, f"  field tag {tag}, length {length}")
            i = k + length

    def walk(self):
        b = self.b
        self.need(0, 16, "shard header")
        if b[:8] != MAGIC:
            raise Damage("not a shard: bad magic")
        self.crc(0, 12, self.u32(12, "header CRC"), "shard header")
        major, minor = struct.unpack_from("<HH", b, 8)
        if major != 1:
            raise Damage(f"unsupported major version {major}")
        self.note(0, 16, f"shard header, version {major}.{minor}")
        i, expected_index, n_frames, n_records = 16, bytearray(), 0, 0
        while True:
            self.need(i, 8, "frame header")
            body_len, body_crc = struct.unpack_from("<II", b, i)
            if body_len < 2 or body_len > 1 << 30:
                raise Damage(f"frame length {body_len} out of range at byte {i}")
            self.need(i + 8, body_len, "frame body")
            self.crc(i + 8, i + 8 + body_len, body_crc, f"frame at byte {i}")
            body_end = i + 8 + body_len
            ftype = b[i + 8]
            self.note(i, i + 10, f"frame header: body {body_len} bytes, type {ftype}")
            if ftype == 2:
                self.index(i, body_end, bytes(expected_index), n_frames, n_records)
                return n_records
            frame_len = 8 + body_len
            n_frames += 1
            expected_index += encode_varint(frame_len) + bytes([ftype])
            if ftype == 1:
                records, blobs, j = self.group_table(i + 10)
                expected_index += b[i + 10 : j]
                self.note(i + 10, j, f"group table: {len(records)} records, {len(blobs)} blobs")
                data_len = sum(r[3] for r in records) + sum(bl[0] for bl in blobs)
                if j + data_len != body_end:
                    raise Damage(f"group data does not fill the frame at byte {i}")
                for rid, kind, codec, meta_len, meta_crc, refs in records:
                    self.crc(j, j + meta_len, meta_crc, f"metadata of {rid!r}")
                    self.note(j, j + meta_len, f"metadata of {rid!r}, codec {codec}")
                    if codec == 0:
                        self.message_fields(j, j + meta_len)
                    j += meta_len
                for k, (length, crc) in enumerate(blobs):
                    self.crc(j, j + length, crc, f"blob {k}")
                    self.note(j, j + length, f"blob {k}: {length} bytes")
                    j += length
                n_records += len(records)
            elif ftype < 0x80:
                raise Damage(f"unknown required frame type {ftype} at byte {i}")
            i = body_end

    def index(self, start, end, expected, n_frames, n_records):
        b = self.b
        codec = b[start + 10]
        payload = b[start + 11 : end]
        if codec == 0:
            actual = payload
            want = encode_varint(n_frames) + expected
            if actual != want:
                raise Damage(f"the index at byte {start} does not describe the frames before it")
        elif codec != 1:
            raise Damage(f"unknown index codec {codec}")
        self.note(start, end, f"index frame, codec {codec}, {n_frames} frames")
        if len(b) - end != 32:
            raise Damage(f"expected the 32-byte trailer after the index, found {len(b) - end} bytes")
        io, il, rc, crc = struct.unpack_from("<QQQI", b, end)
        self.crc(end, end + 24, crc, "trailer")
        if b[end + 28 :] != TRAILER_MAGIC or io != start or io + il != end or rc != n_records:
            raise Damage("trailer does not match the index or the records")
        self.note(end, end + 32, f"trailer: index at {io}, {il} bytes, {rc} records")


def encode_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def main(argv):
    quiet = "--quiet" in argv
    files = [a for a in argv if a != "--quiet"]
    ok = True
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            n = Walker(data, quiet).walk()
            print(f"{path}: ok, {n} records, {len(data)} bytes")
        except (Damage, UnicodeDecodeError) as e:
            print(f"{path}: DAMAGED: {e}")
            ok = False
    return 0 if ok and files else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
