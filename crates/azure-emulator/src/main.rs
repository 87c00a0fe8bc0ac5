//! `azure-emulator`: serves the emulated Entra ID + ARM until killed.

use std::process::ExitCode;

use azure_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, Emulator, EmulatorConfig};

fn usage() -> String {
    format!(
        "azure-emulator: a local Entra ID + ARM server for alert-packet-capture

USAGE: azure-emulator [OPTIONS]

OPTIONS:
  --listen ADDR           address to listen on (default 127.0.0.1:8089)
  --tenant-id ID          tenant the token endpoint accepts (default {DEFAULT_TENANT_ID})
  --client-id ID          client id it accepts (default {DEFAULT_CLIENT_ID})
  --client-secret SECRET  client secret it accepts (default {DEFAULT_CLIENT_SECRET})
  --token-lifetime SECS   expires_in of issued tokens (default 3599)
  --start-delay SECS      seconds before a new capture is Running (default 5)
  --fault-seed N          seed for probabilistic faults (default 0)
  --frozen-clock          the emulator clock moves only via /_emulator/clock (default: real time)
  --demo                  seed a demo VM (Linux, westus, agent installed) and the westus watcher;
                          storagePaths name this emulator's own Blob service
  -h, --help              this text

Control API: /_emulator/... (see the crate docs / README)."
    )
}

fn main() -> ExitCode {
    let mut listen = "127.0.0.1:8089".to_string();
    let mut config = EmulatorConfig { flowing_clock: true, ..EmulatorConfig::default() };
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed: Result<(), String> = (|| {
            match arg.as_str() {
                "-h" | "--help" => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                "--listen" => listen = value("--listen")?,
                "--tenant-id" => config.tenant_id = value("--tenant-id")?,
                "--client-id" => config.client_id = value("--client-id")?,
                "--client-secret" => config.client_secret = value("--client-secret")?,
                "--token-lifetime" => config.token_lifetime_secs = number(&value("--token-lifetime")?)?,
                "--start-delay" => config.capture_start_delay_secs = number(&value("--start-delay")?)?,
                "--fault-seed" => config.fault_seed = number(&value("--fault-seed")?)?,
                "--frozen-clock" => config.flowing_clock = false,
                "--demo" => demo = true,
                other => return Err(format!("unknown option {other}")),
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            eprintln!("azure-emulator: {e}\n\n{}", usage());
            return ExitCode::from(2);
        }
    }

    let emulator = match Emulator::start_with(&listen, config.clone()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("azure-emulator: {e}");
            return ExitCode::from(1);
        }
    };
    println!("azure-emulator listening on {}", emulator.base_url());
    println!("tenant {} client {} (secret from --client-secret)", config.tenant_id, config.client_id);
    if demo {
        let ids = emulator.seed_demo();
        // The demo's component reads capture files from this emulator (storage_blob_host).
        emulator.set_emulator_storage_paths(true);
        println!("demo VM:       {}", ids.vm_id);
        println!("demo watcher:  {}", ids.watcher_id);
        println!("storage id:    {}", ids.storage_account_id);
    }
    loop {
        std::thread::park();
    }
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{text:?} is not a non-negative integer"))
}
