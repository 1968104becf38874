//! SPDY/3 frames (the framing of `github.com/moby/spdystream`, which the kubelet, the
//! container runtimes' streaming servers and client-go speak as "SPDY/3.1"): encoding,
//! decoding, and the zlib-compressed header blocks, one compression context per direction.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// Upstream's limit on one frame's payload (24 bits).
const MAX_LENGTH: usize = 0x00ff_ffff;

/// RST_STREAM status codes.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// Header names (lowercase, as SPDY requires) with their values; a name given more than
/// once travels as one entry with NUL-separated values.
pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
    },
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn u32_at(b: &[u8], at: usize) -> io::Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| invalid("short SPDY frame"))
}

/// One connection's framer: the two header compression contexts live as long as it.
pub struct Framer {
    compress: Compress,
    decompress: Decompress,
    dictionary: Vec<u8>,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub fn new() -> Framer {
        let dictionary = super::dictionary::dictionary();
        let mut compress = Compress::new(Compression::default(), true);
        compress
            .set_dictionary(&dictionary)
            .expect("a fresh deflate stream takes a dictionary");
        Framer {
            compress,
            decompress: Decompress::new(true),
            dictionary,
        }
    }

    /// The frame's bytes on the wire.
    pub fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        let control = |kind: u16, flags: u8, payload: Vec<u8>| {
            let mut out = Vec::with_capacity(8 + payload.len());
            out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.push(flags);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(&payload);
            out
        };
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated_to & 0x7fff_ffff).to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(0);
                p.extend(self.compress_headers(headers));
                control(1, *flags, p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend(self.compress_headers(headers));
                control(2, *flags, p)
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(3, 0, p)
            }
            Frame::Settings { flags, entries } => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for (f, id, value) in entries {
                    p.push(*f);
                    p.extend_from_slice(&id.to_be_bytes()[1..]);
                    p.extend_from_slice(&value.to_be_bytes());
                }
                control(4, *flags, p)
            }
            Frame::Ping { id } => control(6, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut p = (last_good_stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(7, 0, p)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend(self.compress_headers(headers));
                control(8, *flags, p)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                control(9, 0, p)
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(*flags);
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                out
            }
        }
    }

    /// Reads one frame; `None` when the peer closed the connection between frames.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < head.len() {
            let n = r.read(&mut head[got..]).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
            got += n;
        }
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        self.decode(head, payload).map(Some)
    }

    /// A frame from its 8-byte head and payload.
    pub fn decode(&mut self, head: [u8; 8], p: Vec<u8>) -> io::Result<Frame> {
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Frame::Data {
                stream_id,
                flags,
                data: p,
            });
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(invalid(format!("unsupported SPDY version {version}")));
        }
        let id = |at| u32_at(&p, at).map(|v| v & 0x7fff_ffff);
        Ok(match u16::from_be_bytes([head[2], head[3]]) {
            1 => {
                let priority = p
                    .get(8)
                    .copied()
                    .ok_or_else(|| invalid("short SYN_STREAM"))?
                    >> 5;
                Frame::SynStream {
                    stream_id: id(0)?,
                    associated_to: id(4)?,
                    priority,
                    flags,
                    headers: self.decompress_headers(p.get(10..).unwrap_or_default())?,
                }
            }
            2 => Frame::SynReply {
                stream_id: id(0)?,
                flags,
                headers: self.decompress_headers(p.get(4..).unwrap_or_default())?,
            },
            3 => Frame::RstStream {
                stream_id: id(0)?,
                status: u32_at(&p, 4)?,
            },
            4 => {
                let n = u32_at(&p, 0)? as usize;
                let mut entries = Vec::with_capacity(n.min(64));
                for i in 0..n {
                    let at = 4 + i * 8;
                    let fid = u32_at(&p, at)?;
                    entries.push(((fid >> 24) as u8, fid & 0x00ff_ffff, u32_at(&p, at + 4)?));
                }
                Frame::Settings { flags, entries }
            }
            6 => Frame::Ping { id: u32_at(&p, 0)? },
            7 => Frame::GoAway {
                last_good_stream_id: id(0)?,
                status: u32_at(&p, 4).unwrap_or(0),
            },
            8 => Frame::Headers {
                stream_id: id(0)?,
                flags,
                headers: self.decompress_headers(p.get(4..).unwrap_or_default())?,
            },
            9 => Frame::WindowUpdate {
                stream_id: id(0)?,
                delta: id(4)?,
            },
            t => return Err(invalid(format!("unknown SPDY control frame type {t}"))),
        })
    }

    fn compress_headers(&mut self, headers: &Headers) -> Vec<u8> {
        let mut block = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            block.extend_from_slice(&(name.len() as u32).to_be_bytes());
            block.extend_from_slice(name.as_bytes());
            block.extend_from_slice(&(value.len() as u32).to_be_bytes());
            block.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = &block[..];
        loop {
            out.reserve(block.len() + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate into a growing buffer");
            input = &input[(self.compress.total_in() - before) as usize..];
            // A sync flush is complete once all input is taken and spare room remains.
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    fn decompress_headers(&mut self, mut input: &[u8]) -> io::Result<Headers> {
        let mut block = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            block.reserve(input.len() * 4 + 256);
            let before = self.decompress.total_in();
            let res = self
                .decompress
                .decompress_vec(input, &mut block, FlushDecompress::Sync);
            input = &input[(self.decompress.total_in() - before) as usize..];
            match res {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && block.len() < block.capacity() => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.decompress
                        .set_dictionary(&self.dictionary)
                        .map_err(|e| invalid(format!("SPDY header dictionary: {e}")))?;
                }
                Err(e) => return Err(invalid(format!("SPDY header block: {e}"))),
            }
        }
        parse_header_block(&block)
    }
}

fn parse_header_block(b: &[u8]) -> io::Result<Headers> {
    let n = u32_at(b, 0)? as usize;
    let mut at = 4;
    let take = |at: &mut usize| -> io::Result<String> {
        let len = u32_at(b, *at)? as usize;
        let s = b
            .get(*at + 4..*at + 4 + len)
            .ok_or_else(|| invalid("short SPDY header block"))?;
        *at += 4 + len;
        String::from_utf8(s.to_vec()).map_err(|_| invalid("SPDY header is not UTF-8"))
    };
    let mut headers = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let name = take(&mut at)?;
        let value = take(&mut at)?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// Splits a payload into DATA frames no larger than the protocol allows.
pub fn data_frames(stream_id: u32, data: &[u8], chunk: usize) -> impl Iterator<Item = Frame> + '_ {
    data.chunks(chunk.clamp(1, MAX_LENGTH))
        .map(move |c| Frame::Data {
            stream_id,
            flags: 0,
            data: c.to_vec(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let (mut tx, mut rx) = (Framer::new(), Framer::new());
        let mut wire = Vec::new();
        for f in frames {
            wire.extend(tx.encode(f));
        }
        let mut r = &wire[..];
        let mut out = Vec::new();
        while let Some(f) = rx.read(&mut r).await.unwrap() {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn every_frame_kind_round_trips_with_shared_header_contexts() {
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: vec![
                    ("streamtype".into(), "error".into()),
                    ("port".into(), "8080".into()),
                ],
            },
            // The second block references the first through the shared zlib window.
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 7,
                flags: FLAG_FIN,
                headers: h("streamtype", "stdout"),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: b"hello".to_vec(),
            },
            Frame::RstStream {
                stream_id: 3,
                status: RST_CANCEL,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536)],
            },
            Frame::Ping { id: 2 },
            Frame::Headers {
                stream_id: 1,
                flags: 0,
                headers: h("a", "b\0c"),
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 1024,
            },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
        ];
        assert_eq!(round_trip(&frames).await, frames);
    }

    #[test]
    fn control_frames_carry_version_3_and_their_type() {
        let wire = Framer::new().encode(&Frame::Ping { id: 1 });
        assert_eq!(wire, [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        let data = Framer::new().encode(&Frame::Data {
            stream_id: 5,
            flags: FLAG_FIN,
            data: vec![9],
        });
        assert_eq!(data, [0, 0, 0, 5, 1, 0, 0, 1, 9]);
    }

    #[tokio::test]
    async fn truncated_and_unknown_frames_are_errors_not_panics() {
        let mut f = Framer::new();
        let mut short: &[u8] = &[0x80, 3, 0, 6, 0, 0];
        assert!(f.read(&mut short).await.is_err());
        assert!(f.decode([0x80, 3, 0, 42, 0, 0, 0, 0], vec![]).is_err());
        assert!(f.decode([0x80, 2, 0, 6, 0, 0, 0, 4], vec![0; 4]).is_err());
        assert!(f.decode([0x80, 3, 0, 3, 0, 0, 0, 2], vec![0; 2]).is_err());
        assert!(
            f.decode([0x80, 3, 0, 2, 0, 0, 0, 6], vec![0, 0, 0, 1, 1, 2])
                .is_err()
        );
    }
}
