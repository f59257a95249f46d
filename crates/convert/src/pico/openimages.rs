//! Source images from Open Images instead of Flickr.
//!
//! Every `open_image_input_url` equals the `OriginalURL` column of
//! `train-images-boxable-with-rotation.csv`; the extracted tars hold `<ImageID>.jpg` under
//! `train_0/`, `train_1/`, .... Only the URLs the conversion needs are indexed (the CSV has
//! 1.7M rows), so memory follows the plan, not the CSV. Titles and authors hold commas,
//! quotes and newlines: a real CSV parser reads them, behind a reader that caps the length of
//! any physical line so a damaged file cannot exhaust memory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use editshard::error::{Error, Result};

/// Longest physical CSV line accepted (real lines are under 1 KiB).
pub const MAX_CSV_LINE: usize = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub image_id: String,
    /// Counter-clockwise degrees (0/90/180/270); `None` when the CSV leaves it empty or
    /// says something else.
    pub rotation: Option<u16>,
}

/// `OriginalURL` -> (ImageID, Rotation) for the URLs asked for, and where the files are.
#[derive(Debug, Default)]
pub struct OpenImages {
    index: HashMap<String, Entry>,
    /// `DIR` and its `train_*` subdirectories, sorted.
    dirs: Vec<PathBuf>,
}

impl OpenImages {
    /// Reads `csv`, keeping the rows whose `OriginalURL` is in `wanted`.
    pub fn load(csv: &Path, dir: Option<&Path>, wanted: &HashSet<String>) -> Result<OpenImages> {
        // A wrong --openimages-csv is a wrong argument, not a damaged shard: its errors are
        // `Invalid`, whose advice is about the call.
        let ctx = |e: Error| e.in_shard(csv.display().to_string());
        let file = File::open(csv).map_err(|e| {
            ctx(Error::invalid(format!(
                "--openimages-csv: cannot open it: {e}"
            )))
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(LineCap::new(BufReader::with_capacity(1 << 20, file)));
        let headers = reader
            .byte_headers()
            .map_err(|e| ctx(Error::invalid(format!("unreadable CSV header: {e}"))))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name.as_bytes())
                .ok_or_else(|| {
                    ctx(Error::invalid(format!(
                        "the CSV has no {name:?} column (expected Open Images' \
                     train-images-boxable-with-rotation.csv)"
                    )))
                })
        };
        let (id_col, url_col, rot_col) = (col("ImageID")?, col("OriginalURL")?, col("Rotation")?);
        let mut index = HashMap::new();
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    return Err(ctx(Error::invalid(format!(
                        "CSV line {line}: {e} (is the file complete?)"
                    ))));
                }
            }
            let Some(url) = record
                .get(url_col)
                .and_then(|u| std::str::from_utf8(u).ok())
            else {
                continue;
            };
            if !wanted.contains(url) || index.contains_key(url) {
                continue;
            }
            let id = record.get(id_col).unwrap_or_default();
            // ImageIDs are hex; anything else would be unsafe as a file name.
            if id.is_empty() || id.len() > 64 || !id.iter().all(u8::is_ascii_alphanumeric) {
                continue;
            }
            let rotation = record
                .get(rot_col)
                .and_then(|r| std::str::from_utf8(r).ok())
                .and_then(parse_rotation);
            index.insert(
                url.to_string(),
                Entry {
                    image_id: String::from_utf8_lossy(id).into_owned(),
                    rotation,
                },
            );
        }
        let mut dirs = Vec::new();
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(Error::invalid(format!(
                    "--openimages-dir {} is not a directory",
                    dir.display()
                )));
            }
            dirs.push(dir.to_path_buf());
            let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("train_"))
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            subs.sort();
            dirs.extend(subs);
        }
        Ok(OpenImages { index, dirs })
    }

    pub fn entry(&self, url: &str) -> Option<&Entry> {
        self.index.get(url)
    }

    /// The extracted file for a source URL, if the CSV knows the URL and a file exists.
    pub fn file(&self, url: &str) -> Option<PathBuf> {
        let e = self.index.get(url)?;
        let name = format!("{}.jpg", e.image_id);
        self.dirs
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    }
}

/// `0.0`, `90`, `180.0`, `270` -> degrees; anything else (including empty) -> `None`.
pub fn parse_rotation(s: &str) -> Option<u16> {
    let v: f64 = s.trim().parse().ok()?;
    [0u16, 90, 180, 270]
        .into_iter()
        .find(|&d| f64::from(d) == v)
}

/// Fails the read when a physical line grows past [`MAX_CSV_LINE`] bytes.
struct LineCap<R> {
    inner: R,
    run: usize,
}

impl<R> LineCap<R> {
    fn new(inner: R) -> Self {
        LineCap { inner, run: 0 }
    }
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.run = if b == b'\n' { 0 } else { self.run + 1 };
            if self.run > MAX_CSV_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a CSV line is longer than {MAX_CSV_LINE} bytes"),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("x.csv");
        std::fs::write(
            &csv,
            "ImageID,Subset,OriginalURL,Author,Title,Rotation\n\
             00aa,train,https://a/1.jpg,\"Smith, John\",\"say \"\"hi\"\"\nthere\",90.0\n\
             00bb,train,https://a/2.jpg,x,y,\n\
             ../x,train,https://a/3.jpg,x,y,0\n\
             00cc,train,https://a/4.jpg,x,y,0.0\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("train_1")).unwrap();
        std::fs::write(dir.path().join("train_1/00cc.jpg"), b"x").unwrap();
        let wanted: HashSet<String> = [
            "https://a/1.jpg",
            "https://a/2.jpg",
            "https://a/3.jpg",
            "https://a/4.jpg",
        ]
        .map(String::from)
        .into();
        let oi = OpenImages::load(&csv, Some(dir.path()), &wanted).unwrap();
        assert_eq!(oi.entry("https://a/1.jpg").unwrap().rotation, Some(90));
        assert_eq!(oi.entry("https://a/2.jpg").unwrap().rotation, None);
        assert!(oi.entry("https://a/3.jpg").is_none(), "unsafe ImageID kept");
        assert_eq!(
            oi.file("https://a/4.jpg").unwrap(),
            dir.path().join("train_1/00cc.jpg")
        );
        assert!(oi.file("https://a/1.jpg").is_none());
    }

    #[test]
    fn over_long_line_is_an_error_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("x.csv");
        let mut text = "ImageID,OriginalURL,Rotation\n\"".to_string();
        text.push_str(&"x".repeat(MAX_CSV_LINE + 10));
        std::fs::write(&csv, text).unwrap();
        assert!(OpenImages::load(&csv, None, &HashSet::new()).is_err());
    }

    #[test]
    fn rotation_values() {
        assert_eq!(parse_rotation("270.0"), Some(270));
        assert_eq!(parse_rotation(""), None);
        assert_eq!(parse_rotation("45"), None);
        assert_eq!(parse_rotation("nan"), None);
    }
}
