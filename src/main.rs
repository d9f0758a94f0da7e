//! The `wts-playbook` binary: parse the command line, run, exit with the code `app` computed.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wts_playbook::cli::Cli::parse();
    std::process::ExitCode::from(wts_playbook::app::run(cli))
}
