//! `webhook`: listen, send, test, sign, verify and call webhooks, and make keys, from a terminal.
//!
//! Each subcommand lives in its own module; this file parses the command line, runs the
//! subcommand on a tokio runtime and turns its result into a documented exit code (see
//! [`error::EXIT_CODES_HELP`]).

mod call;
mod cli;
mod endpoints_cmd;
mod error;
mod events;
mod keygen;
mod keys;
mod listen;
mod outbox_cmd;
mod parse;
mod redis_cmd;
mod relay;
mod rfc3339;
mod send;
mod sign;
mod signal;
mod style;
mod summary;
mod target;
mod test_cmd;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::cli::{Cli, Command};
use crate::error::{CliError, Exit};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let no_color = cli.no_color;
    let result = match cli.command {
        Command::Sign(args) => sign::sign(&args),
        Command::Verify(args) => sign::verify(&args, no_color),
        Command::Keygen(args) => keygen::run(&args),
        Command::Outbox(args) => outbox_cmd::run(args, no_color),
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("{}", CliError::io("cannot start the async runtime", &e));
                    return Exit::Io.code();
                }
            };
            runtime.block_on(async move {
                match command {
                    Command::Listen(args) => listen::run(args, no_color).await,
                    Command::Send(args) => send::run(args, no_color).await,
                    Command::Test(args) => test_cmd::run(args, no_color).await,
                    Command::Enqueue(args) => redis_cmd::enqueue(args).await,
                    Command::Worker(args) => redis_cmd::worker(args).await,
                    Command::Endpoints(args) => endpoints_cmd::run(args).await,
                    Command::Call(args) => {
                        let rules = matches
                            .subcommand_matches("call")
                            .map(call::ordered_rules)
                            .unwrap_or_default();
                        call::run(args, rules, no_color).await
                    }
                    Command::Sign(_)
                    | Command::Verify(_)
                    | Command::Keygen(_)
                    | Command::Outbox(_) => Ok(Exit::Usage),
                }
            })
        }
    };
    match result {
        Ok(exit) => exit.code(),
        Err(e) => {
            eprintln!("{e}");
            e.exit.code()
        }
    }
}
