//! kubectl: the command-line client. Everything lives in the `kubectl` library crate
//! (upstream `staging/src/k8s.io/kubectl`); this is upstream's `cmd/kubectl/kubectl.go`.

fn main() {
    std::process::exit(kubectl::main(std::env::args_os().collect()));
}
