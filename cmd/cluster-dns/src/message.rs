//! The DNS wire format (RFC 1035) as far as a cluster DNS needs it: one question in,
//! A / SRV / PTR / CNAME answers out, name compression only in what we read.

#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

pub const A: u16 = 1;
pub const CNAME: u16 = 5;
pub const PTR: u16 = 12;
pub const SRV: u16 = 33;
pub const ANY: u16 = 255;

pub const NOERROR: u8 = 0;
pub const FORMERR: u8 = 1;
pub const SERVFAIL: u8 = 2;
pub const NXDOMAIN: u8 = 3;
pub const NOTIMP: u8 = 4;
pub const REFUSED: u8 = 5;

pub enum Rdata {
    A([u8; 4]),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
    Cname(String),
}

pub struct Record {
    pub name: String,
    pub ttl: u32,
    pub data: Rdata,
}

fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            return Some((labels.join("."), end.unwrap_or(pos + 1)));
        }
        if len & 0xC0 == 0xC0 {
            let ptr = ((len & 0x3F) << 8) | *msg.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            pos = ptr;
            continue;
        }
        let label = msg.get(pos + 1..pos + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).to_lowercase());
        pos += 1 + len;
    }
    None
}

/// (id, flags, question) of a query.
pub fn parse_query(msg: &[u8]) -> Option<(u16, u16, Question)> {
    if msg.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    if qd != 1 {
        return None;
    }
    let (name, pos) = read_name(msg, 12)?;
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(pos + 2)?, *msg.get(pos + 3)?]);
    Some((
        id,
        flags,
        Question {
            name,
            qtype,
            qclass,
        },
    ))
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
}

/// An authoritative response with `rcode` and `answers`.
pub fn response(
    id: u16,
    query_flags: u16,
    q: Option<&Question>,
    rcode: u8,
    answers: &[Record],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    // QR, opcode copied, AA, RD copied, RA.
    let flags: u16 = 0x8000
        | (query_flags & 0x7800)
        | 0x0400
        | (query_flags & 0x0100)
        | 0x0080
        | u16::from(rcode);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&(q.is_some() as u16).to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    if let Some(q) = q {
        write_name(&mut out, &q.name);
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&q.qclass.to_be_bytes());
    }
    for r in answers {
        write_name(&mut out, &r.name);
        let (t, data) = match &r.data {
            Rdata::A(ip) => (A, ip.to_vec()),
            Rdata::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let mut d = Vec::new();
                d.extend_from_slice(&priority.to_be_bytes());
                d.extend_from_slice(&weight.to_be_bytes());
                d.extend_from_slice(&port.to_be_bytes());
                write_name(&mut d, target);
                (SRV, d)
            }
            Rdata::Ptr(target) => {
                let mut d = Vec::new();
                write_name(&mut d, target);
                (PTR, d)
            }
            Rdata::Cname(target) => {
                let mut d = Vec::new();
                write_name(&mut d, target);
                (CNAME, d)
            }
        };
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let q = Question {
            name: "web.default.svc.cluster.local".into(),
            qtype: A,
            qclass: 1,
        };
        let mut msg = response(7, 0x0100, Some(&q), NOERROR, &[]);
        // Make it a query again.
        msg[2] = 0x01;
        let (id, _, parsed) = parse_query(&msg).unwrap();
        assert_eq!((id, parsed), (7, q));
    }
}
