//! The tar archives `kubectl cp` pipes through `tar` in the container (upstream uses Go's
//! `archive/tar`): ustar entries for files, directories and symlinks, GNU long names
//! for paths past 100 bytes, and PAX `path`/`linkpath` records when reading.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
    Other,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
}

fn octal(field: &mut [u8], v: u64) {
    let width = field.len() - 1;
    let s = format!("{v:0width$o}");
    field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
    field[width] = 0;
}

fn header(name: &str, e: &Entry, typeflag: u8, size: u64, link: &str) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    octal(&mut h[100..108], (e.mode & 0o7777) as u64);
    octal(&mut h[108..116], e.uid as u64);
    octal(&mut h[116..124], e.gid as u64);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], e.mtime);
    h[156] = typeflag;
    let l = link.as_bytes();
    h[157..157 + l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    octal(&mut h[148..155], sum as u64);
    h[155] = b' ';
    h
}

/// Writes entries; `finish` adds the two zero blocks that end an archive.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out }
    }

    fn long_name(&mut self, typeflag: u8, value: &str) -> io::Result<()> {
        let e = Entry {
            name: "././@LongLink".into(),
            mode: 0o644,
            size: 0,
            mtime: 0,
            kind: Kind::Other,
            uid: 0,
            gid: 0,
        };
        let data = format!("{value}\0");
        self.out.write_all(&header(
            "././@LongLink",
            &e,
            typeflag,
            data.len() as u64,
            "",
        ))?;
        self.pad_write(data.as_bytes())
    }

    fn pad_write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        let rem = data.len() % BLOCK;
        if rem != 0 {
            self.out.write_all(&vec![0u8; BLOCK - rem])?;
        }
        Ok(())
    }

    /// One entry; a file's content comes from `data` (exactly `e.size` bytes).
    pub fn append(&mut self, e: &Entry, data: Option<&mut dyn Read>) -> io::Result<()> {
        let mut name = e.name.clone();
        if e.kind == Kind::Dir && !name.ends_with('/') {
            name.push('/');
        }
        if name.len() > 100 {
            self.long_name(b'L', &name)?;
        }
        let (flag, size, link) = match &e.kind {
            Kind::File => (b'0', e.size, String::new()),
            Kind::Dir => (b'5', 0, String::new()),
            Kind::Symlink(t) => (b'2', 0, t.clone()),
            Kind::Other => return Ok(()),
        };
        if link.len() > 100 {
            self.long_name(b'K', &link)?;
        }
        self.out.write_all(&header(&name, e, flag, size, &link))?;
        if let (Kind::File, Some(r)) = (&e.kind, data) {
            let copied = io::copy(&mut r.take(size), &mut self.out)?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{}: file changed while archiving", e.name),
                ));
            }
            let rem = (size as usize) % BLOCK;
            if rem != 0 {
                self.out.write_all(&vec![0u8; BLOCK - rem])?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn parse_octal(f: &[u8]) -> io::Result<u64> {
    // GNU base-256 for large values.
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for b in &f[1..] {
            v = (v << 8) | *b as u64;
        }
        return Ok(v);
    }
    let s: String = f
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| invalid("invalid tar header number"))
}

fn invalid(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.to_string())
}

fn cstr(f: &[u8]) -> String {
    String::from_utf8_lossy(&f[..f.iter().position(|b| *b == 0).unwrap_or(f.len())]).into_owned()
}

/// Reads entries one at a time; the caller reads each file's content with
/// [`Reader::read_data`] before asking for the next entry.
pub struct Reader<R: Read> {
    inner: R,
    /// What is left of the current entry's data and padding.
    remaining: u64,
    padding: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            remaining: 0,
            padding: 0,
        }
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.remaining + self.padding;
        io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    fn read_block(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        let mut h = [0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            let n = self.inner.read(&mut h[got..])?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(invalid("truncated tar header"))
                };
            }
            got += n;
        }
        Ok(Some(h))
    }

    fn read_small(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > 1 << 20 {
            return Err(invalid("tar extended header too large"));
        }
        let mut data = vec![0u8; size as usize];
        self.inner.read_exact(&mut data)?;
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        io::copy(&mut (&mut self.inner).take(pad), &mut io::sink())?;
        Ok(data)
    }

    /// The next entry, `None` at the end of the archive.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        self.skip_rest()?;
        let (mut long_name, mut long_link) = (None, None);
        loop {
            let Some(h) = self.read_block()? else {
                return Ok(None);
            };
            if h.iter().all(|b| *b == 0) {
                return Ok(None);
            }
            let stored: u64 = parse_octal(&h[148..156])?;
            let sum: u64 = h
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        *b as u64
                    }
                })
                .sum();
            if stored != sum {
                return Err(invalid("tar header checksum mismatch"));
            }
            let size = parse_octal(&h[124..136])?;
            let flag = h[156];
            match flag {
                b'L' => {
                    long_name = Some(cstr(&self.read_small(size)?));
                    continue;
                }
                b'K' => {
                    long_link = Some(cstr(&self.read_small(size)?));
                    continue;
                }
                b'x' => {
                    let data = self.read_small(size)?;
                    for (k, v) in pax_records(&data) {
                        match k.as_str() {
                            "path" => long_name = Some(v),
                            "linkpath" => long_link = Some(v),
                            _ => {}
                        }
                    }
                    continue;
                }
                b'g' => {
                    self.read_small(size)?;
                    continue;
                }
                _ => {}
            }
            let mut name = cstr(&h[..100]);
            if &h[257..262] == b"ustar" && h[345] != 0 {
                name = format!("{}/{name}", cstr(&h[345..500]));
            }
            let name = long_name.take().unwrap_or(name);
            let link = long_link.take().unwrap_or_else(|| cstr(&h[157..257]));
            let kind = match flag {
                b'0' | 0 | b'7' if !name.ends_with('/') => Kind::File,
                b'5' | b'0' | 0 => Kind::Dir,
                b'2' => Kind::Symlink(link),
                _ => Kind::Other,
            };
            let data_size = if matches!(kind, Kind::Dir | Kind::Symlink(_)) {
                0
            } else {
                size
            };
            self.remaining = data_size;
            self.padding = (BLOCK as u64 - data_size % BLOCK as u64) % BLOCK as u64;
            return Ok(Some(Entry {
                name,
                mode: parse_octal(&h[100..108])? as u32,
                size,
                mtime: parse_octal(&h[136..148])?,
                kind,
                uid: parse_octal(&h[108..116])? as u32,
                gid: parse_octal(&h[116..124])? as u32,
            }));
        }
    }

    /// Copies the current entry's data into `out`.
    pub fn read_data(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        let n = io::copy(&mut (&mut self.inner).take(self.remaining), out)?;
        if n != self.remaining {
            return Err(invalid("truncated tar entry"));
        }
        self.remaining = 0;
        Ok(n)
    }
}

/// `"<len> key=value\n"` records.
fn pax_records(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some((len, _)) = rest.split_once(' ') {
        let Ok(n) = len.parse::<usize>() else { break };
        if n == 0 || n > rest.len() {
            break;
        }
        let record = &rest[len.len() + 1..n];
        if let Some((k, v)) = record.trim_end_matches('\n').split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        rest = &rest[n..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_round_trip_with_long_names_and_links() {
        let long = format!("d/{}", "x".repeat(150));
        let mut w = Writer::new(Vec::new());
        let dir = Entry {
            name: "d".into(),
            mode: 0o755,
            size: 0,
            mtime: 1,
            kind: Kind::Dir,
            uid: 0,
            gid: 0,
        };
        w.append(&dir, None).unwrap();
        let file = Entry {
            name: long.clone(),
            mode: 0o640,
            size: 5,
            mtime: 2,
            kind: Kind::File,
            uid: 1000,
            gid: 1000,
        };
        w.append(&file, Some(&mut &b"hello"[..])).unwrap();
        let link = Entry {
            name: "d/l".into(),
            mode: 0o777,
            size: 0,
            mtime: 3,
            kind: Kind::Symlink("../etc/passwd".into()),
            uid: 0,
            gid: 0,
        };
        w.append(&link, None).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = Reader::new(&bytes[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.kind), ("d/", Kind::Dir));
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.name.as_str(), e.mode, e.kind),
            (long.as_str(), 0o640, Kind::File)
        );
        let mut data = Vec::new();
        r.read_data(&mut data).unwrap();
        assert_eq!(data, b"hello");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.kind, Kind::Symlink("../etc/passwd".into()));
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn pax_paths_and_corruption() {
        assert_eq!(
            pax_records(b"20 path=a/b/c/d/e/f\n"),
            vec![("path".to_string(), "a/b/c/d/e/f".to_string())]
        );
        let mut bad = vec![0u8; 1024];
        bad[0] = b'a';
        bad[148] = b'1';
        assert!(Reader::new(&bad[..]).next_entry().is_err());
        // Skipping an unread entry's data lands on the next header.
        let mut w = Writer::new(Vec::new());
        for n in ["a", "b"] {
            let e = Entry {
                name: n.into(),
                mode: 0o644,
                size: 600,
                mtime: 0,
                kind: Kind::File,
                uid: 0,
                gid: 0,
            };
            w.append(&e, Some(&mut &vec![7u8; 600][..])).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut r = Reader::new(&bytes[..]);
        assert_eq!(r.next_entry().unwrap().unwrap().name, "a");
        assert_eq!(r.next_entry().unwrap().unwrap().name, "b");
    }
}
