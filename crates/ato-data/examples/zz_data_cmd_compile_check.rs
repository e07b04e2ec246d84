#[path = "../../ato-cli/src/data_cmd.rs"]
mod data_cmd;
use clap::Parser;
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: data_cmd::DataCommand,
}
fn main() -> anyhow::Result<()> {
    data_cmd::run(Cli::parse().cmd)
}
