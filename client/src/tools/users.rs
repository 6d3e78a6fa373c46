//! `ironlog users`: SCRAM users (like `kafka-configs --entity-type users` with
//! `SCRAM-SHA-256=[...]` / `SCRAM-SHA-512=[...]` configs).
//!
//! `create` salts the password here (a random 32-byte salt, PBKDF2 with `--iterations`) and
//! sends the salt and the salted password: the password itself never crosses the wire.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;

use crate::tools::{format_table, ConnectionArgs};
use crate::{ScramMechanism, UserScramCredentials};

#[derive(clap::Args, Debug)]
pub struct UsersArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum UsersCommand {
    /// List the users with SCRAM credentials: user, mechanism, iterations.
    List {
        /// Only this user; repeatable.
        #[arg(long = "user", value_name = "NAME")]
        users: Vec<String>,
    },
    /// Create a user's SCRAM credential, or replace it (a new password or iteration count).
    /// The password comes from --password-file, --password or the first line of stdin.
    Create {
        /// The user name (its principal is User:NAME).
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: ScramMechanism,
        /// PBKDF2 iterations, 4096 to 16384.
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
        /// A file whose first line is the password.
        #[arg(long, value_name = "FILE", conflicts_with = "password")]
        password_file: Option<PathBuf>,
        /// The password (visible to other local users in the process list: prefer
        /// --password-file or stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete a user's SCRAM credential for one mechanism.
    Delete {
        /// The user name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: ScramMechanism,
    },
}

/// Parses a SCRAM mechanism name, case-insensitively.
pub fn parse_mechanism(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_sasl_name(&name.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown SCRAM mechanism {name:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"))
}

/// The first line of `text` without its line ending.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The password of `create`: from the file, the flag, or the first line of stdin (with a
/// prompt on a terminal).
fn read_password(
    name: &str,
    password_file: Option<PathBuf>,
    password: Option<String>,
) -> anyhow::Result<String> {
    let password = if let Some(path) = password_file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading --password-file {}", path.display()))?;
        first_line(&text).to_owned()
    } else if let Some(password) = password {
        password
    } else {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprint!("Password for {name} (shown as typed): ");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        first_line(&line).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}

/// Runs `ironlog users`.
pub async fn run(args: UsersArgs) -> anyhow::Result<()> {
    // The password is read before connecting: a prompt must not wait on a slow broker.
    let password = match &args.command {
        UsersCommand::Create {
            name,
            password_file,
            password,
            ..
        } => Some(read_password(
            name,
            password_file.clone(),
            password.clone(),
        )?),
        _ => None,
    };
    let client = args.connection.connect().await?;
    match args.command {
        UsersCommand::List { users } => {
            let filter = (!users.is_empty()).then_some(users);
            let described = client
                .describe_user_scram_credentials(filter.as_deref())
                .await?;
            if described.is_empty() {
                eprintln!("No users with SCRAM credentials.");
            } else {
                print!("{}", format_users(&described));
            }
        }
        UsersCommand::Create {
            name,
            mechanism,
            iterations,
            ..
        } => {
            let password = password.unwrap_or_default();
            client
                .upsert_user_scram_credential(&name, mechanism, iterations, &password)
                .await?;
            println!(
                "Set the {} credential of {name} ({iterations} iterations).",
                mechanism.sasl_name()
            );
        }
        UsersCommand::Delete { name, mechanism } => {
            client
                .delete_user_scram_credential(&name, mechanism)
                .await?;
            println!(
                "Deleted the {} credential of {name}.",
                mechanism.sasl_name()
            );
        }
    }
    Ok(())
}

/// The `list` table: one row per user and mechanism.
pub fn format_users(users: &[UserScramCredentials]) -> String {
    let mut rows = Vec::new();
    for user in users {
        for credential in &user.credentials {
            rows.push(vec![
                user.user.clone(),
                credential
                    .mechanism
                    .map_or("UNKNOWN", ScramMechanism::sasl_name)
                    .to_owned(),
                credential.iterations.to_string(),
            ]);
        }
    }
    format_table(&["USER", "MECHANISM", "ITERATIONS"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::parse_args;
    use crate::ScramCredentialInfo;

    #[test]
    fn create_takes_name_mechanism_iterations_and_password_source() {
        let args: UsersArgs = parse_args(&[
            "create",
            "alice",
            "--mechanism",
            "scram-sha-256",
            "--iterations",
            "8192",
            "--password-file",
            "pw.txt",
        ])
        .unwrap();
        match args.command {
            UsersCommand::Create {
                name,
                mechanism,
                iterations,
                password_file,
                password,
            } => {
                assert_eq!(name, "alice");
                assert_eq!(mechanism, ScramMechanism::Sha256);
                assert_eq!(iterations, 8192);
                assert_eq!(password_file, Some(PathBuf::from("pw.txt")));
                assert_eq!(password, None);
            }
            other => panic!("{other:?}"),
        }
        let defaults: UsersArgs =
            parse_args(&["create", "bob", "--mechanism", "SCRAM-SHA-512"]).unwrap();
        assert!(matches!(
            defaults.command,
            UsersCommand::Create {
                iterations: 4096,
                mechanism: ScramMechanism::Sha512,
                ..
            }
        ));
        let err = parse_args::<UsersArgs>(&["create", "bob", "--mechanism", "MD5"]).unwrap_err();
        assert!(err.to_string().contains("unknown SCRAM mechanism"), "{err}");
        let err = parse_args::<UsersArgs>(&[
            "create",
            "bob",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password",
            "x",
            "--password-file",
            "f",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cannot be used with"), "{err}");
        assert!(parse_args::<UsersArgs>(&["delete", "bob"]).is_err());
    }

    #[test]
    fn password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret pass\r\nignored\n").unwrap();
        assert_eq!(
            read_password("a", Some(path.clone()), None).unwrap(),
            "s3cret pass"
        );
        std::fs::write(&path, "\n").unwrap();
        let err = read_password("a", Some(path), None).unwrap_err();
        assert_eq!(err.to_string(), "the password is empty");
        assert_eq!(read_password("a", None, Some("p".into())).unwrap(), "p");
    }

    #[test]
    fn users_table_has_a_row_per_mechanism() {
        let table = format_users(&[
            UserScramCredentials {
                user: "admin".into(),
                credentials: vec![
                    ScramCredentialInfo {
                        mechanism: Some(ScramMechanism::Sha256),
                        iterations: 8192,
                    },
                    ScramCredentialInfo {
                        mechanism: Some(ScramMechanism::Sha512),
                        iterations: 4096,
                    },
                ],
            },
            UserScramCredentials {
                user: "alice".into(),
                credentials: vec![ScramCredentialInfo {
                    mechanism: None,
                    iterations: 4096,
                }],
            },
        ]);
        assert_eq!(
            table,
            "USER   MECHANISM      ITERATIONS\n\
             admin  SCRAM-SHA-256  8192\n\
             admin  SCRAM-SHA-512  4096\n\
             alice  UNKNOWN        4096\n"
        );
    }
}
