//! The JSON line `editshard cat` prints for a record: its metadata, and with `--images` each
//! image's bytes as base64 `data`. The base64 is encoded while it is written, never held as a
//! string: a record with four 300 MiB images costs its image bytes in memory, not three more
//! copies of them (the base64 strings, and the line they were joined into).

use std::io::Write;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use editshard::record::{Image, Record, Turn};

/// Writes `record` as one JSON line: its metadata restricted to `id`, `kind` and `fields`
/// (all of it when `fields` is empty), with image bytes when they were read.
pub fn write_record_line(
    out: &mut impl Write,
    record: &Record,
    fields: &[String],
) -> std::io::Result<()> {
    let mut json = record.to_json();
    if !fields.is_empty() {
        if let Value::Object(map) = &mut json {
            map.retain(|k, _| k == "id" || k == "kind" || fields.iter().any(|f| f == k));
        }
    }
    serde_json::to_writer(&mut *out, &RecordJson(&json, record))?;
    out.write_all(b"\n")
}

/// A record's metadata with each image's `data` added.
struct RecordJson<'a>(&'a Value, &'a Record);
/// A turn's metadata with its output's and rejected images' `data` added.
struct TurnJson<'a>(&'a Value, &'a Turn);
/// An image's metadata with its `data` added, when read.
struct ImageJson<'a>(&'a Value, &'a Image);
/// Bytes as base64, encoded into the output as it is written.
struct Base64<'a>(&'a [u8]);

fn entries(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    v.as_object().into_iter().flatten()
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in entries(self.0) {
            match k.as_str() {
                "source" => map.serialize_entry(k, &ImageJson(v, &self.1.source))?,
                "turns" => map.serialize_entry(k, &Turns(v, &self.1.turns))?,
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

struct Turns<'a>(&'a Value, &'a [Turn]);

impl Serialize for Turns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.as_array().map_or(&[][..], Vec::as_slice);
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for (v, turn) in items.iter().zip(self.1) {
            seq.serialize_element(&TurnJson(v, turn))?;
        }
        seq.end()
    }
}

impl Serialize for TurnJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in entries(self.0) {
            match k.as_str() {
                "output" => map.serialize_entry(k, &ImageJson(v, &self.1.output))?,
                "rejected" => map.serialize_entry(k, &Rejected(v, &self.1.rejected))?,
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

struct Rejected<'a>(&'a Value, &'a [Image]);

impl Serialize for Rejected<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.as_array().map_or(&[][..], Vec::as_slice);
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for (v, image) in items.iter().zip(self.1) {
            seq.serialize_element(&ImageJson(v, image))?;
        }
        seq.end()
    }
}

impl Serialize for ImageJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in entries(self.0) {
            map.serialize_entry(k, v)?;
        }
        if let Some(data) = &self.1.data {
            map.serialize_entry("data", &Base64(data))?;
        }
        map.end()
    }
}

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use editshard::record::Kind;

    fn png(shade: u8) -> Image {
        let mut i = Image::with_info(bytes::Bytes::from(vec![shade; 7]), "image/png".into(), 1, 1);
        i.url = Some("https://h/a.png".into());
        i
    }

    #[test]
    fn same_json_as_the_metadata_with_base64_data() {
        let mut turn = Turn::new(png(2));
        turn.rejected = vec![png(3), png(4)];
        turn.instruction = Some("make it \"blue\"\n".into());
        let r = Record::new("a/1", Kind::Preference, png(1), vec![turn]);
        let mut line = Vec::new();
        write_record_line(&mut line, &r, &[]).unwrap();
        let got: Value = serde_json::from_slice(&line).unwrap();
        let mut want = r.to_json();
        let b64 = |s: u8| Value::String(STANDARD.encode(vec![s; 7]));
        want["source"]["data"] = b64(1);
        want["turns"][0]["output"]["data"] = b64(2);
        want["turns"][0]["rejected"][0]["data"] = b64(3);
        want["turns"][0]["rejected"][1]["data"] = b64(4);
        assert_eq!(got, want);
        assert!(line.ends_with(b"}\n"));

        let mut stripped = r.clone();
        stripped.strip_data();
        let mut line = Vec::new();
        write_record_line(&mut line, &stripped, &["turns".into()]).unwrap();
        let got: Value = serde_json::from_slice(&line).unwrap();
        assert!(got.get("source").is_none());
        assert!(got["turns"][0]["output"].get("data").is_none());
        assert_eq!(got["id"], "a/1");
    }
}
