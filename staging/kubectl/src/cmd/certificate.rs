//! `kubectl certificate approve|deny`. Upstream twin:
//! `kubectl/pkg/cmd/certificates/certificates.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::json;

#[derive(clap::Subcommand, Debug)]
pub enum CertificateCommand {
    /// Approve a certificate signing request
    Approve(CsrArgs),
    /// Deny a certificate signing request
    Deny(CsrArgs),
}

#[derive(clap::Args, Debug)]
pub struct CsrArgs {
    pub names: Vec<String>,
    /// Update the CSR even if it is already approved.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(f: &mut Factory, c: CertificateCommand) -> CmdResult {
    let (a, approve) = match c {
        CertificateCommand::Approve(a) => (a, true),
        CertificateCommand::Deny(a) => (a, false),
    };
    if a.names.is_empty() {
        return Err(CmdError::msg(
            "one or more CSRs must be specified as <name> or -f <filename>",
        ));
    }
    let client = f.client().await?;
    let (ty, reason, message, verb) = if approve {
        (
            "Approved",
            "KubectlApprove",
            "This CSR was approved by kubectl certificate approve.",
            "approved",
        )
    } else {
        (
            "Denied",
            "KubectlDeny",
            "This CSR was denied by kubectl certificate deny.",
            "denied",
        )
    };
    let mut errors = Vec::new();
    for name in &a.names {
        let name = name.rsplit('/').next().unwrap_or(name);
        let path = format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}");
        let mut csr = match client.get_json(&path, client::JSON).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(e.message());
                continue;
            }
        };
        let conditions = csr["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c["type"] == "Denied" || c["type"] == "Failed")
            && approve
        {
            errors.push(format!(
                "error: certificatesigningrequest.certificates.k8s.io/{name} is already Denied"
            ));
            continue;
        }
        if conditions.iter().any(|c| c["type"] == ty) && !a.force {
            output::print(&format!(
                "certificatesigningrequest.certificates.k8s.io/{name} {verb}\n"
            ));
            continue;
        }
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let mut list = conditions;
        list.push(json!({"type": ty, "status": "True", "reason": reason, "message": message, "lastUpdateTime": now}));
        csr["status"]["conditions"] = json!(list);
        match client
            .typed_send(http::Method::PUT, &format!("{path}/approval"), &csr)
            .await
        {
            Ok(_) => output::print(&format!(
                "certificatesigningrequest.certificates.k8s.io/{name} {verb}\n"
            )),
            Err(e) => errors.push(e.message()),
        }
    }
    crate::error::from_messages(errors)
}
