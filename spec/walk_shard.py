#!/usr/bin/env python3
"""Walk an editshard v1 shard (format 1.0 or 1.1) front to back, check it, and print an
annotated layout.

An independent reader written from spec/FORMAT.md alone. With the Python standard library only,
zstd-compressed metadata is checked by CRC, length and zstd frame header (declared size and
window within the limits, the dictionary frame's magic) but not decompressed; with the
`zstandard` module installed it is decompressed too (codec 2 with the shard's dictionary), and
every record's metadata is walked and its image count checked against `n_refs`. It exists to
show the spec is implementable, and `crates/format/tests/format/spec_walker.rs` runs it over the
golden vectors (`crates/format/tests/vectors/`).

Usage: walk_shard.py [--quiet] FILE...    exit 0 if every file is a valid shard, 1 otherwise.
"""
import struct
import sys
import zlib

try:
    import zstandard
except ImportError:  # the standard library alone: zstd blocks are not decompressed
    zstandard = None

MAGIC = b"\x89ESHARD\n"
TRAILER_MAGIC = b"ESIX"
DICT_MAGIC = b"\x37\xa4\x30\xec"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_META = 16 << 20
MAX_WINDOW = 32 << 20
MAX_DICT = 1 << 20
# Tags whose value is an image message: Record 1 (source); Turn 5 (output), 6 (rejected), 7 (mask).
RECORD_TURN, RECORD_SOURCE, TURN_IMAGES = 2, 1, (5, 6, 7)


class Damage(Exception):
    pass


class Walker:
    def __init__(self, data, quiet):
        self.b = data
        self.quiet = quiet
        self.dictionary = None  # bytes of the dictionary frame (1.1)
        self.decompressed = 0  # metadata blocks decompressed and walked

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
            if kind > 3 or codec > 2:
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

    def zstd_header(self, j, n, what):
        """Checks a zstd frame's header (RFC 8878 3.1.1): declared size and window in limits."""
        f = self.b[j : j + n]
        if f[:4] != ZSTD_MAGIC or len(f) < 6:
            raise Damage(f"{what}: not a zstd frame at byte {j}")
        fhd = f[4]
        single, did_len = fhd & 0x20, [0, 1, 2, 4][fhd & 3]
        fcs_len = [1 if single else 0, 2, 4, 8][fhd >> 6]
        at = 5 if single else 6
        if not single:
            w = f[5]
            base = 1 << (10 + (w >> 3))
            window = base + (base >> 3) * (w & 7)
        at += did_len
        if fcs_len == 0:
            raise Damage(f"{what}: the zstd frame at byte {j} does not declare its size")
        size = int.from_bytes(f[at : at + fcs_len], "little") + (256 if fcs_len == 2 else 0)
        if single:
            window = size
        if size > MAX_META or window > MAX_WINDOW:
            raise Damage(f"{what}: zstd size {size} or window {window} over the limit at byte {j}")
        return size

    def metadata(self, j, meta_len, codec, n_refs, rid):
        """Decodes a metadata block when possible and counts the images it describes."""
        block = self.b[j : j + meta_len]
        if codec in (1, 2):
            size = self.zstd_header(j, meta_len, f"metadata of {rid!r}")
            if codec == 2 and self.dictionary is None:
                raise Damage(f"metadata of {rid!r} uses codec 2 but no dictionary frame precedes it")
            if zstandard is None:
                return
            d = zstandard.ZstdCompressionDict(self.dictionary) if codec == 2 else None
            try:
                dctx = zstandard.ZstdDecompressor(dict_data=d) if d else zstandard.ZstdDecompressor()
                block = dctx.decompress(block, max_output_size=size)
            except zstandard.ZstdError as e:
                raise Damage(f"metadata of {rid!r}: zstd: {e}") from e
            if len(block) != size:
                raise Damage(f"metadata of {rid!r}: declared {size} bytes, got {len(block)}")
        images = count_images(block, rid)
        if images != n_refs:
            raise Damage(f"record {rid!r}: its metadata describes {images} images, n_refs is {n_refs}")
        self.decompressed += 1

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
                if self.dictionary is not None:
                    expected_index += self.dictionary
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
                    self.metadata(j, meta_len, codec, len(refs), rid)
                    j += meta_len
                for k, (length, crc) in enumerate(blobs):
                    self.crc(j, j + length, crc, f"blob {k}")
                    self.note(j, j + length, f"blob {k}: {length} bytes")
                    j += length
                n_records += len(records)
            elif ftype == 3:
                if self.dictionary is not None:
                    raise Damage(f"a second dictionary frame at byte {i}")
                d = b[i + 10 : body_end]
                if d[:4] != DICT_MAGIC or len(d) < 8 or len(d) > MAX_DICT:
                    raise Damage(f"the dictionary frame at byte {i} holds no zstd dictionary")
                self.dictionary = bytes(d)
                dict_id = struct.unpack_from("<I", d, 4)[0]
                self.note(i + 10, body_end, f"metadata dictionary: {len(d)} bytes, id {dict_id}")
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
        elif zstandard is not None:
            try:
                actual = zstandard.ZstdDecompressor().decompress(payload, max_output_size=256 << 20)
            except zstandard.ZstdError as e:
                raise Damage(f"the index at byte {start}: zstd: {e}") from e
            if actual != encode_varint(n_frames) + expected:
                raise Damage(f"the index at byte {start} does not describe the frames before it")
        self.note(start, end, f"index frame, codec {codec}, {n_frames} frames")
        if len(b) - end != 32:
            raise Damage(f"expected the 32-byte trailer after the index, found {len(b) - end} bytes")
        io, il, rc, crc = struct.unpack_from("<QQQI", b, end)
        self.crc(end, end + 24, crc, "trailer")
        if b[end + 28 :] != TRAILER_MAGIC or io != start or io + il != end or rc != n_records:
            raise Damage("trailer does not match the index or the records")
        self.note(end, end + 32, f"trailer: index at {io}, {il} bytes, {rc} records")


def fields(m, what):
    """The (tag, value) pairs of a TLV message."""
    i, out = 0, []
    while i < len(m):
        tag, i = decode_varint(m, i, what)
        length, i = decode_varint(m, i, what)
        if i + length > len(m):
            raise Damage(f"{what}: a field runs past the end of its message")
        out.append((tag, m[i : i + length]))
        i += length
    return out


def count_images(meta, rid):
    """Images a record's metadata describes: the source, and per turn output, rejected, mask."""
    n = 0
    for tag, value in fields(meta, f"metadata of {rid!r}"):
        if tag == RECORD_SOURCE:
            n += 1
        elif tag == RECORD_TURN:
            n += sum(1 for t, _ in fields(value, f"a turn of {rid!r}") if t in TURN_IMAGES)
    return n


def decode_varint(b, i, what):
    v, shift = 0, 0
    for _ in range(10):
        if i >= len(b):
            raise Damage(f"{what}: truncated varint")
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, i
    raise Damage(f"{what}: varint longer than 10 bytes")


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
            w = Walker(data, quiet)
            n = w.walk()
            how = f", {w.decompressed} metadata blocks decoded" if zstandard else ""
            print(f"{path}: ok, {n} records, {len(data)} bytes{how}")
        except (Damage, UnicodeDecodeError) as e:
            print(f"{path}: DAMAGED: {e}")
            ok = False
    return 0 if ok and files else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
