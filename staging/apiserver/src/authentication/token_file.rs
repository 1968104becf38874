//! `--token-auth-file` (upstream `authentication/token/tokenfile`): CSV lines of
//! `token,user,uid[,"group1,group2"]`.

use super::UserInfo;
use std::collections::HashMap;

pub struct TokenFile {
    users: HashMap<String, UserInfo>,
}

/// Splits one CSV line, honouring double quotes.
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

impl TokenFile {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let f = fields(line);
            if f.len() < 3 {
                return Err(format!(
                    "token file line {}: at least 3 columns (token, user name, user uid) are required",
                    i + 1
                ));
            }
            let groups = f
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            if users.contains_key(&f[0]) {
                return Err(format!("token file line {}: duplicate token", i + 1));
            }
            users.insert(
                f[0].clone(),
                UserInfo {
                    name: f[1].clone(),
                    uid: f[2].clone(),
                    groups,
                    ..Default::default()
                },
            );
        }
        Ok(TokenFile { users })
    }

    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn user(&self, token: &str) -> Option<UserInfo> {
        self.users.get(token).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_format() {
        let f = TokenFile::parse("t1,alice,1001,\"dev,ops\"\n# comment\nt2,bob,1002\n").unwrap();
        let a = f.user("t1").unwrap();
        assert_eq!((a.name.as_str(), a.uid.as_str()), ("alice", "1001"));
        assert_eq!(a.groups, ["dev", "ops"]);
        assert!(f.user("t2").unwrap().groups.is_empty());
        assert!(f.user("nope").is_none());
        assert!(TokenFile::parse("t1,alice\n").is_err());
        assert!(TokenFile::parse("t1,a,1\nt1,b,2\n").is_err());
    }
}
