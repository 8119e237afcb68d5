//! The agent as a Windows service.
//!
//! `agent install --config C:\ProgramData\optima-sync\agent.toml` registers
//! the service (automatic start, restart on failure, the event source),
//! gives its account write access to the state and log folders, and starts
//! it; the Service Control Manager then runs `agent service --config FILE
//! --name NAME`, which reports to the SCM, runs the same loop as `agent
//! run` and stops it cleanly on Stop or Shutdown. Logs go to a daily-rotated
//! file in `<config folder>\logs\` (14 kept) and warnings and errors also to
//! the Application event log under the service's name.
//!
//! The SQL password may also come from the Windows Credential Manager of
//! the service's account ([`crate::secrets::read_credential`]).

use std::ffi::{OsStr, OsString};
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::config::AgentConfig;
use crate::service::WindowsServiceDefinition;

static ARGS: OnceLock<(String, PathBuf)> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hands the process to the Service Control Manager (`agent service`).
pub fn dispatch(name: String, config: PathBuf) -> ExitCode {
    let _ = ARGS.set((name.clone(), config));
    match service_dispatcher::start(&name, ffi_service_main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "`agent service` is started by the Windows Service Control Manager; in a console use `agent run` ({err})"
            );
            ExitCode::FAILURE
        }
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let Some((name, config)) = ARGS.get().cloned() else {
        return;
    };
    let _guard = init_logging(&name, &config);
    if let Err(err) = run_service(&name, &config) {
        error!(error = %format!("{err:#}"), "the service stopped with an error");
    }
}

fn run_service(name: &str, config_path: &Path) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            stop.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(name, handler)
        .context("registering with the Service Control Manager")?;
    let report = |state: ServiceState, exit: ServiceExitCode, wait: Duration| {
        let accepted = if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        };
        status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepted,
            exit_code: exit,
            checkpoint: 0,
            wait_hint: wait,
            process_id: None,
        })
    };
    report(
        ServiceState::StartPending,
        ServiceExitCode::Win32(0),
        Duration::from_secs(10),
    )?;
    let outcome = (|| {
        let config = AgentConfig::load(config_path)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        report(
            ServiceState::Running,
            ServiceExitCode::Win32(0),
            Duration::ZERO,
        )?;
        info!(service = name, config = %config_path.display(), "service running");
        runtime.block_on(crate::run_until(
            config,
            async move { cancel.cancelled().await },
        ))
    })();
    let exit = match &outcome {
        Ok(()) => ServiceExitCode::Win32(0),
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    report(ServiceState::Stopped, exit, Duration::ZERO)?;
    outcome
}

/// The log folder: `logs\` beside the configuration file.
pub fn log_dir(config: &Path) -> PathBuf {
    crate::service::windows_log_dir(config)
}

/// Daily-rotated log file (14 kept) plus warnings and errors to the event log.
fn init_logging(name: &str, config: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tiberius=error"));
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("agent")
        .filename_suffix("log")
        .max_log_files(14)
        .build(log_dir(config))
        .ok();
    let (file_layer, guard) = match appender {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(writer),
                ),
                Some(guard),
            )
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(EventLog::open(name))
        .try_init();
    guard
}

fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain(std::iter::once(0)).collect()
}

/// Warnings and errors to the Application event log.
struct EventLog {
    handle: windows_sys::Win32::Foundation::HANDLE,
}

// The handle is a process-wide event source handle; ReportEventW is thread-safe.
unsafe impl Send for EventLog {}
unsafe impl Sync for EventLog {}

impl EventLog {
    fn open(source: &str) -> Option<EventLog> {
        let name = wide(OsStr::new(source));
        // SAFETY: a valid NUL-terminated UTF-16 string; a null server is the local machine.
        let handle = unsafe {
            windows_sys::Win32::System::EventLog::RegisterEventSourceW(
                std::ptr::null(),
                name.as_ptr(),
            )
        };
        (!handle.is_null()).then_some(EventLog { handle })
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventLog {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        use windows_sys::Win32::System::EventLog::{
            EVENTLOG_ERROR_TYPE, EVENTLOG_WARNING_TYPE, ReportEventW,
        };
        let kind = match *event.metadata().level() {
            tracing::Level::ERROR => EVENTLOG_ERROR_TYPE,
            tracing::Level::WARN => EVENTLOG_WARNING_TYPE,
            _ => return,
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        let text = wide(OsStr::new(&message.0));
        let strings = [text.as_ptr()];
        // SAFETY: one valid NUL-terminated string; the handle lives as long as self.
        unsafe {
            ReportEventW(
                self.handle,
                kind,
                0,
                1,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            );
        }
    }
}

/// The message file .NET ships with every Windows: it shows the text as given.
/// Registers the service as `definition` says, runs its commands (folder
/// rights, event source) and starts it.
pub fn install(
    definition: &WindowsServiceDefinition,
    password: Option<String>,
) -> anyhow::Result<String> {
    let name = definition.name.as_str();
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .context("opening the Service Control Manager (run the console as Administrator)")?;
    let info = ServiceInfo {
        name: name.into(),
        display_name: OsString::from(&definition.display_name),
        service_type: ServiceType::OWN_PROCESS,
        start_type: if definition.automatic_start {
            ServiceStartType::AutoStart
        } else {
            ServiceStartType::OnDemand
        },
        error_control: ServiceErrorControl::Normal,
        executable_path: definition.executable.clone(),
        launch_arguments: definition.arguments.clone(),
        dependencies: vec![],
        account_name: Some(definition.account.as_str().into()),
        account_password: password.map(Into::into),
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
        )
        .with_context(|| format!("creating the service `{name}`"))?;
    service.set_description(&definition.description).ok();
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(definition.failure_count_reset),
            reboot_msg: None,
            command: None,
            actions: Some(
                definition
                    .restart_after
                    .iter()
                    .map(|delay| ServiceAction {
                        action_type: ServiceActionType::Restart,
                        delay: *delay,
                    })
                    .collect(),
            ),
        })
        .context("setting restart on failure")?;
    for dir in &definition.writable {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for command in &definition.commands {
        if let Some((program, args)) = command.split_first() {
            run(Command::new(program).args(args))?;
        }
    }
    service
        .start(&[] as &[&OsStr])
        .with_context(|| format!("starting the service `{name}`"))?;
    Ok(format!(
        "installed and started the service `{name}` ({} as {}); logs in {} and the Application event log",
        definition.executable.display(),
        definition.account,
        definition
            .writable
            .last()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    ))
}

fn open(name: &str, access: ServiceAccess) -> anyhow::Result<windows_service::service::Service> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .context("opening the Service Control Manager (run the console as Administrator)")?;
    manager
        .open_service(name, access)
        .with_context(|| format!("opening the service `{name}` (is it installed?)"))
}

fn wait_for_state(
    service: &windows_service::service::Service,
    wanted: ServiceState,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while service.query_status()?.current_state != wanted {
        if Instant::now() > deadline {
            bail!("the service did not reach {wanted:?} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// Stops (when running) and removes the service and its event source.
pub fn uninstall(name: &str) -> anyhow::Result<String> {
    let service = open(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    )?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop().context("stopping the service")?;
        wait_for_state(&service, ServiceState::Stopped)?;
    }
    service.delete().context("deleting the service")?;
    let _ = run(Command::new("reg").args([
        "delete",
        &crate::service::windows_event_source_key(name),
        "/f",
    ]));
    Ok(format!(
        "stopped and removed the service `{name}`; the configuration, its secrets, the state and the logs were left in place"
    ))
}

pub fn start(name: &str) -> anyhow::Result<String> {
    let service = open(name, ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    service
        .start(&[] as &[&OsStr])
        .context("starting the service")?;
    wait_for_state(&service, ServiceState::Running)?;
    Ok(format!("the service `{name}` is running"))
}

pub fn stop(name: &str) -> anyhow::Result<String> {
    let service = open(name, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    service.stop().context("stopping the service")?;
    wait_for_state(&service, ServiceState::Stopped)?;
    Ok(format!("the service `{name}` is stopped"))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(())
}
