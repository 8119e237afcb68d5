//! One client session: its own SQLite connection, transaction state and SET
//! options. Executes SQL batches, RPC calls and transaction manager requests
//! and writes the response tokens, streaming them out in chunks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;
use rusqlite::types::Value as SV;

use super::infer::{OutCol, ParamTypes};
use super::translate::{KeySource, Kind, Stmt, translate};
use crate::db::{self, SessionVars};
use crate::error::{Result, SqlError};
use crate::schema::{self, DATABASE_NAME, Table, UniqueKind};
use crate::tds::rpc::{Param, RpcCall, TmRequest};
use crate::tds::tokens::*;
use crate::types::{SqlType, Value};

/// A request from the client.
#[derive(Debug)]
pub enum Request {
    Batch(String),
    Rpc(Vec<RpcCall>),
    Tm(TmRequest),
}

/// Bytes flushed to the client when the buffer grows past this.
const CHUNK: usize = 64 * 1024;

type Sink<'a> = dyn FnMut(Vec<u8>) -> bool + 'a;

struct Out<'a> {
    t: Tokens,
    sink: &'a mut Sink<'a>,
    closed: bool,
}

impl Out<'_> {
    fn maybe_flush(&mut self) {
        if self.t.buf.len() >= CHUNK {
            let b = self.t.take();
            if !(self.sink)(b) {
                self.closed = true;
            }
        }
    }
}

/// SQL text and parameter types → translated statements.
type CacheKey = (String, Vec<(String, SqlType)>);

struct Prepared {
    sql: String,
    decl: String,
}

pub struct Session {
    conn: Connection,
    vars: Arc<SessionVars>,
    nocount: bool,
    tran_desc: u64,
    next_desc: u64,
    cancel: Arc<AtomicBool>,
    cache: HashMap<CacheKey, Arc<Vec<Stmt>>>,
    prepared: HashMap<i32, Prepared>,
    next_handle: i32,
    /// Tables (lower case) the login may not read (`settings::deny_select`).
    denied: std::collections::HashSet<String>,
    /// Table variables of the running batch (their SQLite temp tables),
    /// dropped when it ends.
    table_vars: Vec<String>,
    /// The database file, which [`crate::work`] counts the work under.
    database: String,
}

impl Session {
    pub fn open(path: &Path, spid: u16, user: &str, cancel: Arc<AtomicBool>) -> Result<Session> {
        let vars = Arc::new(SessionVars {
            spid: spid as i64,
            user: user.to_string(),
            lock_timeout: (-1).into(),
            ..Default::default()
        });
        let conn = db::open(path, vars.clone())?;
        conn.set_prepared_statement_cache_capacity(128);
        let denied = crate::settings::denied_select(&conn, user)?;
        Ok(Session {
            conn,
            vars,
            nocount: false,
            tran_desc: 0,
            next_desc: 1,
            cancel,
            cache: HashMap::new(),
            prepared: HashMap::new(),
            next_handle: 1,
            denied,
            table_vars: Vec::new(),
            database: path.to_string_lossy().into_owned(),
        })
    }

    pub fn interrupt_handle(&self) -> rusqlite::InterruptHandle {
        self.conn.get_interrupt_handle()
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Executes a request; response bytes go to `sink` (which returns false
    /// when the client is gone). Returns true when an attention was honoured
    /// (the response then ends with DONE + ATTN).
    pub fn execute<'a>(&mut self, req: Request, sink: &'a mut Sink<'a>) -> bool {
        let mut out = Out {
            t: Tokens::new(),
            sink,
            closed: false,
        };
        if let Some(done) = self.injected_fault(&req, &mut out) {
            return done;
        }
        let attn = match req {
            Request::Batch(sql) => {
                self.run_sql(&sql, &HashMap::new(), &ParamTypes::new(), false, &mut out)
            }
            Request::Rpc(calls) => {
                let n = calls.len();
                let mut attn = false;
                for (i, call) in calls.into_iter().enumerate() {
                    attn = self.run_rpc(call, i + 1 == n, &mut out);
                    if attn {
                        break;
                    }
                }
                attn
            }
            Request::Tm(tm) => {
                let r = match tm {
                    TmRequest::Begin => self.begin(&mut out.t),
                    TmRequest::Commit => self.commit(&mut out.t),
                    TmRequest::Rollback => self.rollback(&mut out.t),
                    TmRequest::Other(n) => Err(SqlError::unsupported(format!(
                        "transaction manager request {n}"
                    ))),
                };
                match r {
                    Ok(()) => out.t.done(TOKEN_DONE, DONE_FINAL, 0, 0),
                    Err(e) => {
                        out.t.error(&e);
                        out.t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
                    }
                }
                false
            }
        };
        if attn {
            out.t.done(TOKEN_DONE, DONE_ATTN, 0, 0);
        }
        let rest = out.t.take();
        (out.sink)(rest);
        attn
    }

    /// A control batch ([`crate::faults`]) or a fault switched on for this
    /// statement: answered here, the statement not run.
    fn injected_fault(&mut self, req: &Request, out: &mut Out<'_>) -> Option<bool> {
        use crate::faults::{CONTROL_PREFIX, FAULTS};
        if let Request::Batch(sql) = req
            && let Some(json) = sql.trim_start().strip_prefix(CONTROL_PREFIX)
        {
            match FAULTS.apply(json) {
                Ok(()) => out.t.done(TOKEN_DONE, DONE_FINAL, 0, 0),
                Err(e) => {
                    out.t
                        .error(&SqlError::internal(format!("fault switches: {e}")));
                    out.t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
                }
            }
        } else if matches!(req, Request::Tm(_)) {
            return None;
        } else {
            let latency = FAULTS.latency();
            if !latency.is_zero() {
                std::thread::sleep(latency);
            }
            let in_transaction = self.vars.trancount.load(Ordering::SeqCst) > 0;
            if !FAULTS.take_deadlock(in_transaction) {
                return None;
            }
            // As SQL Server: the victim's transaction is rolled back whole.
            if in_transaction {
                let _ = self.rollback(&mut out.t);
            }
            tracing::info!(
                spid = self.vars.spid,
                in_transaction,
                "standin fault injected: deadlock 1205"
            );
            out.t.error(&SqlError::new(
                1205,
                13,
                format!(
                    "Transaction (Process ID {}) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.",
                    self.vars.spid
                ),
            ));
            out.t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
        }
        let rest = out.t.take();
        (out.sink)(rest);
        Some(false)
    }

    fn run_rpc(&mut self, call: RpcCall, last: bool, out: &mut Out<'_>) -> bool {
        let name = call.name();
        let more = if last { 0 } else { DONE_MORE };
        let mut params = call.params.into_iter();
        let text = |p: Option<Param>| match p.map(|p| p.value) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        };
        let mut handle_out = None;
        let (sql, decl, rest): (String, String, Vec<Param>) = match name.as_str() {
            "sp_executesql" => {
                let Some(sql) = text(params.next()) else {
                    return self.rpc_error(out, more, SqlError::new(
                        214,
                        16,
                        "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'.",
                    ));
                };
                let decl = text(params.next()).unwrap_or_default();
                (sql, decl, params.collect())
            }
            "sp_prepare" | "sp_prepexec" => {
                let _handle = params.next();
                let decl = text(params.next()).unwrap_or_default();
                let Some(sql) = text(params.next()) else {
                    return self.rpc_error(
                        out,
                        more,
                        SqlError::new(
                            8144,
                            16,
                            "Procedure or function has too many arguments specified.",
                        ),
                    );
                };
                let h = self.next_handle;
                self.next_handle += 1;
                self.prepared.insert(
                    h,
                    Prepared {
                        sql: sql.clone(),
                        decl: decl.clone(),
                    },
                );
                handle_out = Some(h);
                if name == "sp_prepare" {
                    out.t.return_status(0);
                    out.t.return_value_int(0, "@handle", h);
                    out.t.done(TOKEN_DONEPROC, more, 0, 0);
                    return false;
                }
                (sql, decl, params.collect())
            }
            "sp_execute" => {
                let h = match params.next().map(|p| p.value) {
                    Some(Value::Int(h)) => h as i32,
                    _ => -1,
                };
                let Some(p) = self.prepared.get(&h) else {
                    return self.rpc_error(
                        out,
                        more,
                        SqlError::new(
                            8179,
                            16,
                            format!("Could not find prepared statement with handle {h}."),
                        ),
                    );
                };
                (p.sql.clone(), p.decl.clone(), params.collect())
            }
            "sp_unprepare" => {
                if let Some(Value::Int(h)) = params.next().map(|p| p.value) {
                    self.prepared.remove(&(h as i32));
                }
                out.t.return_status(0);
                out.t.done(TOKEN_DONEPROC, more, 0, 0);
                return false;
            }
            other => {
                return self.rpc_error(
                    out,
                    more,
                    SqlError::new(
                        2812,
                        16,
                        format!("Could not find stored procedure '{other}'."),
                    ),
                );
            }
        };
        // Parameter names: as sent, or in the declaration's order.
        let declared: Vec<String> = split_decl(&decl);
        let mut values = HashMap::new();
        let mut types = ParamTypes::new();
        for (i, p) in rest.into_iter().enumerate() {
            let name = if p.name.is_empty() {
                declared
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("@P{}", i + 1))
            } else {
                p.name.clone()
            };
            let key = name.to_ascii_uppercase();
            types.insert(key.clone(), p.ty);
            values.insert(key, p.value);
        }
        let attn = self.run_sql(&sql, &values, &types, true, out);
        if attn {
            return true;
        }
        out.t.return_status(0);
        if let Some(h) = handle_out {
            out.t.return_value_int(0, "@handle", h);
        }
        out.t.done(TOKEN_DONEPROC, more, 0, 0);
        false
    }

    fn rpc_error(&mut self, out: &mut Out<'_>, more: u16, e: SqlError) -> bool {
        out.t.error(&e);
        out.t.return_status(-6);
        out.t.done(TOKEN_DONEPROC, more | DONE_ERROR, 0, 0);
        false
    }

    fn translate_cached(
        &mut self,
        sql: &str,
        types: &ParamTypes,
    ) -> Result<Arc<Vec<Stmt>>, SqlError> {
        let mut key_types: Vec<(String, SqlType)> =
            types.iter().map(|(k, v)| (k.clone(), *v)).collect();
        key_types.sort_by(|a, b| a.0.cmp(&b.0));
        let key = (sql.to_string(), key_types);
        if let Some(s) = self.cache.get(&key) {
            return Ok(s.clone());
        }
        let stmts = Arc::new(translate(sql, types)?);
        if self.cache.len() > 512 {
            self.cache.clear();
        }
        self.cache.insert(key, stmts.clone());
        Ok(stmts)
    }

    /// Runs a T-SQL batch, then drops its table variables.
    fn run_sql(
        &mut self,
        sql: &str,
        values: &HashMap<String, Value>,
        types: &ParamTypes,
        in_proc: bool,
        out: &mut Out<'_>,
    ) -> bool {
        let attn = self.run_batch(sql, values, types, in_proc, out);
        for t in std::mem::take(&mut self.table_vars) {
            if let Err(e) = self
                .conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {t}"))
            {
                tracing::warn!(error = %e, table = t, "dropping a table variable");
            }
        }
        attn
    }

    /// Runs a T-SQL batch. In an RPC, statement results end with DONEINPROC
    /// and the caller closes with DONEPROC; in a batch with DONE.
    fn run_batch(
        &mut self,
        sql: &str,
        values: &HashMap<String, Value>,
        types: &ParamTypes,
        in_proc: bool,
        out: &mut Out<'_>,
    ) -> bool {
        let token = if in_proc {
            TOKEN_DONEINPROC
        } else {
            TOKEN_DONE
        };
        let stmts = match self.translate_cached(sql, types) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(number = e.number, message = %e.message, "batch rejected");
                out.t.error(&e);
                if !in_proc {
                    out.t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
                }
                return false;
            }
        };
        if stmts.is_empty() && !in_proc {
            out.t.done(TOKEN_DONE, DONE_FINAL, 0, 0);
            return false;
        }
        let n = stmts.len();
        for (i, st) in stmts.iter().enumerate() {
            if self.cancelled() {
                return true;
            }
            let more = if i + 1 < n || in_proc { DONE_MORE } else { 0 };
            let inxact = if self.tran_desc != 0 { DONE_INXACT } else { 0 };
            let (cur_cmd, res) = match st {
                Stmt::Begin => (0xD4, self.begin(&mut out.t).map(|_| None)),
                Stmt::Commit => (0xD5, self.commit(&mut out.t).map(|_| None)),
                Stmt::Rollback => (0xD2, self.rollback(&mut out.t).map(|_| None)),
                Stmt::SetNoCount(on) => {
                    self.nocount = *on;
                    (0xB9, Ok(None))
                }
                Stmt::SetLockTimeout(ms) => {
                    let d = if *ms < 0 {
                        db::BUSY_TIMEOUT
                    } else {
                        std::time::Duration::from_millis(*ms as u64)
                    };
                    self.vars.lock_timeout.store(*ms, Ordering::SeqCst);
                    (
                        0xB9,
                        self.conn
                            .busy_timeout(d)
                            .map(|_| None)
                            .map_err(SqlError::internal),
                    )
                }
                Stmt::Noop => (0xB9, Ok(None)),
                Stmt::DeclareTable { name, columns } => (0xB9, self.declare_table(name, columns)),
                Stmt::Sql { kind, .. } => {
                    let cmd = match kind {
                        Kind::Select => 0xC1,
                        Kind::Insert => 0xC3,
                        Kind::Delete => 0xC4,
                        Kind::Update => 0xC5,
                    };
                    (cmd, self.run_stmt(st, values, out))
                }
            };
            match res {
                Ok(count) => {
                    let status = more
                        | inxact
                        | if count.is_some() && !self.nocount {
                            DONE_COUNT
                        } else {
                            0
                        };
                    out.t.done(token, status, cur_cmd, count.unwrap_or(0));
                }
                Err(e) if e.number == 0 => return true, // interrupted
                Err(e) => {
                    tracing::debug!(number = e.number, message = %e.message, "statement failed");
                    out.t.error(&e);
                    out.t.done(token, more | inxact | DONE_ERROR, cur_cmd, 0);
                }
            }
            out.maybe_flush();
            if out.closed {
                return false;
            }
        }
        false
    }

    fn begin(&mut self, t: &mut Tokens) -> Result<(), SqlError> {
        if self.vars.trancount.load(Ordering::SeqCst) == 0 {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| strip_marker(map_error(e, None, None, &HashMap::new())))?;
            self.tran_desc = self.next_desc;
            self.next_desc += 1;
            t.env_begin_tran(self.tran_desc);
        }
        self.vars.trancount.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn commit(&mut self, t: &mut Tokens) -> Result<(), SqlError> {
        let n = self.vars.trancount.load(Ordering::SeqCst);
        if n == 0 {
            return Err(SqlError::new(
                3902,
                16,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        }
        if n == 1 {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| strip_marker(map_error(e, None, None, &HashMap::new())))?;
            t.env_end_tran(9, self.tran_desc);
            self.tran_desc = 0;
        }
        self.vars.trancount.store(n - 1, Ordering::SeqCst);
        Ok(())
    }

    fn rollback(&mut self, t: &mut Tokens) -> Result<(), SqlError> {
        if self.vars.trancount.load(Ordering::SeqCst) == 0 {
            return Err(SqlError::new(
                3903,
                16,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        }
        if !self.conn.is_autocommit() {
            self.conn
                .execute_batch("ROLLBACK")
                .map_err(|e| strip_marker(map_error(e, None, None, &HashMap::new())))?;
        }
        t.env_end_tran(10, self.tran_desc);
        self.tran_desc = 0;
        self.vars.trancount.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Creates a table variable as a SQLite temp table (typed, so its
    /// columns go out in their declared SQL Server types).
    fn declare_table(
        &mut self,
        name: &str,
        columns: &[(String, SqlType)],
    ) -> Result<Option<u64>, SqlError> {
        let table = crate::sql::translate::table_var_sqlite(name);
        let cols: Vec<String> = columns
            .iter()
            .map(|(n, ty)| format!("\"{}\" {}", n.replace('"', ""), ty.sqlite_decl()))
            .collect();
        self.conn
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({});",
                cols.join(", ")
            ))
            .map_err(|e| strip_marker(map_error(e, None, None, &HashMap::new())))?;
        self.table_vars.push(table);
        Ok(None)
    }

    /// Runs one statement; Ok(Some(n)) is the row count for DONE. An error
    /// with number 0 means interrupted by an attention.
    fn run_stmt(
        &mut self,
        st: &Stmt,
        values: &HashMap<String, Value>,
        out: &mut Out<'_>,
    ) -> Result<Option<u64>, SqlError> {
        let Stmt::Sql {
            sql,
            kind,
            returns_rows,
            columns,
            target,
            inserted,
            aliases,
            reads,
            output_into,
        } = st
        else {
            return Ok(None);
        };
        if let Some(t) = reads
            .iter()
            .find(|t| self.denied.contains(&t.name.to_ascii_lowercase()))
        {
            return Err(crate::settings::permission_denied(t.name));
        }
        let cancel = self.cancel.clone();
        let conn = &self.conn;
        let merr = |e: rusqlite::Error| {
            if cancel.load(Ordering::SeqCst) {
                return SqlError::new(0, 0, "interrupted");
            }
            map_error(e, Some(*kind), *target, values)
                .with_conversion_value(inserted, values)
                .with_duplicate_value(inserted, values)
        };
        let mut stmt = conn.prepare_cached(sql).map_err(merr)?;
        for i in 1..=stmt.parameter_count() {
            let name = stmt.parameter_name(i).unwrap_or("?").to_ascii_uppercase();
            let v = values
                .get(&name)
                .ok_or_else(|| SqlError::undeclared(&name))?;
            stmt.raw_bind_parameter(i, v.to_sqlite()).map_err(merr)?;
        }
        let identity = *kind == Kind::Insert && target.is_some_and(|t| t.identity().is_some());
        if !returns_rows {
            let n = stmt.raw_execute().map_err(merr)?;
            crate::work::record(&self.database, &stmt);
            if identity && n > 0 {
                self.vars
                    .scope_identity
                    .store(conn.last_insert_rowid(), Ordering::SeqCst);
            }
            return Ok(Some(n as u64));
        }
        if let Some(into) = output_into {
            // OUTPUT ... INTO @t: the rows go into the table variable.
            let mut rows = stmt.raw_query();
            let mut collected: Vec<Vec<SV>> = Vec::new();
            while let Some(row) = rows.next().map_err(merr)? {
                let mut r = Vec::new();
                for i in 0..row.as_ref().column_count() {
                    r.push(
                        SV::try_from(row.get_ref(i).map_err(merr)?).map_err(SqlError::internal)?,
                    );
                }
                collected.push(r);
            }
            drop(rows);
            crate::work::record(&self.database, &stmt);
            drop(stmt);
            if identity && !collected.is_empty() {
                self.vars
                    .scope_identity
                    .store(conn.last_insert_rowid(), Ordering::SeqCst);
            }
            let ncols = collected.first().map(|r| r.len()).unwrap_or(0);
            if !into.columns.is_empty() && !collected.is_empty() && into.columns.len() != ncols {
                return Err(SqlError::new(
                    213,
                    16,
                    "Column name or number of supplied values does not match table definition.",
                ));
            }
            let cols = if into.columns.is_empty() {
                String::new()
            } else {
                format!(
                    "({})",
                    into.columns
                        .iter()
                        .map(|c| format!("\"{}\"", c.replace('"', "")))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let marks = (1..=ncols)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let ins = format!("INSERT INTO {} {cols} VALUES ({marks})", into.table);
            for r in &collected {
                conn.execute(&ins, rusqlite::params_from_iter(r.iter()))
                    .map_err(|e| strip_marker(map_error(e, Some(Kind::Insert), None, values)))?;
            }
            return Ok(Some(collected.len() as u64));
        }
        // Column types: static (from the statement), by column name (the
        // schema), by declared type (SQLite), or from the values.
        let ncols = stmt.column_count();
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let decls: Vec<Option<SqlType>> = stmt
            .columns()
            .map(|c| c.decl_type().and_then(SqlType::parse))
            .collect();
        let mut metas: Vec<Option<ColMeta>> = Vec::with_capacity(ncols);
        for i in 0..ncols {
            let st: Option<&OutCol> = columns.as_ref().and_then(|c| c.get(i));
            let name = st
                .map(|c| c.name.clone())
                .unwrap_or_else(|| names[i].clone());
            let by_static = st.and_then(|c| c.ty.map(|t| (t, c.nullable)));
            let by_name = if st.is_none() {
                schema::find_column(&names[i]).map(|(_, c)| (c.ty, c.nullable))
            } else {
                None
            };
            let by_decl = decls[i].map(|t| (t, true));
            let by_alias = aliases.get(&names[i].to_ascii_lowercase()).copied();
            metas.push(
                by_static
                    .or(by_name)
                    .or(by_alias)
                    .or(by_decl)
                    .map(|(ty, nullable)| ColMeta { name, ty, nullable }),
            );
            if metas[i].is_none() {
                // placeholder name kept for runtime inference
                metas[i] = None;
            }
        }
        let static_names: Vec<String> = (0..ncols)
            .map(|i| {
                columns
                    .as_ref()
                    .and_then(|c| c.get(i))
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| names[i].clone())
            })
            .collect();
        let mut rows = stmt.raw_query();
        let mut count: u64 = 0;
        if metas.iter().all(|m| m.is_some()) {
            let metas: Vec<ColMeta> = metas.into_iter().flatten().collect();
            out.t.col_metadata(&metas);
            let mut vals = Vec::with_capacity(ncols);
            while let Some(row) = rows.next().map_err(merr)? {
                vals.clear();
                for (i, m) in metas.iter().enumerate() {
                    let v = row.get_ref(i).map_err(merr)?;
                    vals.push(m.ty.convert(v)?);
                }
                out.t.row(&metas, &vals)?;
                count += 1;
                if out.t.buf.len() >= CHUNK {
                    out.maybe_flush();
                    if out.closed || self.cancel.load(Ordering::SeqCst) {
                        return Err(SqlError::new(0, 0, "interrupted"));
                    }
                }
            }
        } else {
            let mut buffered: Vec<Vec<SV>> = Vec::new();
            while let Some(row) = rows.next().map_err(merr)? {
                let mut r = Vec::with_capacity(ncols);
                for i in 0..ncols {
                    r.push(
                        SV::try_from(row.get_ref(i).map_err(merr)?).map_err(SqlError::internal)?,
                    );
                }
                buffered.push(r);
            }
            let metas: Vec<ColMeta> = metas
                .into_iter()
                .enumerate()
                .map(|(i, m)| {
                    m.unwrap_or_else(|| ColMeta {
                        name: static_names[i].clone(),
                        ty: runtime_type(buffered.iter().map(|r| &r[i])),
                        nullable: true,
                    })
                })
                .collect();
            out.t.col_metadata(&metas);
            for r in &buffered {
                let mut vals = Vec::with_capacity(ncols);
                for (i, m) in metas.iter().enumerate() {
                    vals.push(m.ty.convert((&r[i]).into())?);
                }
                out.t.row(&metas, &vals)?;
                count += 1;
                out.maybe_flush();
            }
        }
        drop(rows);
        crate::work::record(&self.database, &stmt);
        if identity && count > 0 {
            self.vars
                .scope_identity
                .store(conn.last_insert_rowid(), Ordering::SeqCst);
        }
        Ok(Some(count))
    }
}

/// A column type chosen from the values when nothing declares one.
fn runtime_type<'a>(vals: impl Iterator<Item = &'a SV>) -> SqlType {
    let mut ty: Option<SqlType> = None;
    let mut max_len = 1usize;
    for v in vals {
        let t = match v {
            SV::Null => continue,
            SV::Integer(i) => {
                if i32::try_from(*i).is_ok() {
                    SqlType::Int
                } else {
                    SqlType::BigInt
                }
            }
            SV::Real(_) => SqlType::Float,
            SV::Text(s) => {
                max_len = max_len.max(s.chars().count());
                SqlType::NVarChar(Some(4000))
            }
            SV::Blob(_) => SqlType::VarBinary(None),
        };
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(SqlType::Int), SqlType::BigInt) => SqlType::BigInt,
            (Some(SqlType::Int | SqlType::BigInt), SqlType::Float) => SqlType::Float,
            (Some(SqlType::Float), SqlType::Int | SqlType::BigInt) => SqlType::Float,
            (Some(a), b) if a == b => a,
            (Some(_), _) => SqlType::NVarChar(Some(4000)),
        });
    }
    match ty {
        Some(SqlType::NVarChar(_)) if max_len > 4000 => SqlType::NVarChar(None),
        Some(t) => t,
        None => SqlType::Int,
    }
}

fn split_decl(decl: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in decl.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.iter()
        .filter_map(|p| p.split_whitespace().next().map(|s| s.to_string()))
        .collect()
}

fn verb(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Update) => "UPDATE",
        Some(Kind::Delete) => "DELETE",
        _ => "INSERT",
    }
}

impl SqlError {
    /// Adds SQL Server's "The duplicate key value is (…)." to 2601/2627
    /// when the inserted values are known.
    fn with_duplicate_value(
        mut self,
        inserted: &[(String, KeySource)],
        values: &HashMap<String, Value>,
    ) -> SqlError {
        let cols = self.message.split('\u{1}').nth(1).map(|c| c.to_string());
        self = strip_marker(self);
        let Some(cols) = cols else {
            return self;
        };
        if !matches!(self.number, 2601 | 2627) || inserted.is_empty() {
            return self;
        }
        let mut parts = Vec::new();
        for c in cols.split(',') {
            let Some((_, src)) = inserted.iter().find(|(n, _)| n == c) else {
                return self;
            };
            parts.push(match src {
                KeySource::Literal(s) => s.clone(),
                KeySource::Param(p) => match values.get(p) {
                    Some(Value::Null) | None => "<NULL>".into(),
                    Some(Value::Str(s)) => s.clone(),
                    Some(Value::Int(i)) => i.to_string(),
                    Some(Value::Decimal(d)) => d.to_string(),
                    Some(Value::Guid(g)) => g.to_string().to_uppercase(),
                    Some(Value::DateTime(d)) => crate::types::format_datetime(d),
                    Some(other) => other.tsql_literal(),
                },
            });
        }
        self.message = format!(
            "{} The duplicate key value is ({}).",
            self.message,
            parts.join(", ")
        );
        self
    }
}

/// Strips the duplicate-key column marker that [`map_error`] leaves for
/// [`SqlError::with_duplicate_value`].
fn strip_marker(mut e: SqlError) -> SqlError {
    if let Some(i) = e.message.find(['\u{1}', '\u{2}']) {
        e.message.truncate(i);
    }
    e
}

impl SqlError {
    /// Names the value and its type in 245/8114 ("Conversion failed when
    /// converting the nvarchar value 'abc' to data type int.") when the
    /// statement's values are known.
    fn with_conversion_value(
        mut self,
        inserted: &[(String, KeySource)],
        values: &HashMap<String, Value>,
    ) -> SqlError {
        let Some((head, col)) = self.message.split_once('\u{2}') else {
            return self;
        };
        let (head, col) = (head.to_string(), col.to_ascii_lowercase());
        self.message = head;
        let found: Option<(&str, String)> = match inserted.iter().find(|(c, _)| *c == col) {
            Some((_, KeySource::Literal(s))) => Some(("varchar", s.clone())),
            Some((_, KeySource::Param(p))) => match values.get(p) {
                Some(Value::Str(s)) => Some(("nvarchar", s.clone())),
                _ => None,
            },
            None => values.values().find_map(|v| match v {
                Value::Str(s) if crate::types::parse_decimal(s).is_none() => {
                    Some(("nvarchar", s.clone()))
                }
                _ => None,
            }),
        };
        let Some((src, value)) = found else {
            return self;
        };
        self.message = if self.number == 8114 {
            format!("Error converting data type {src} to numeric.")
        } else {
            let ty = self
                .message
                .rsplit(' ')
                .next()
                .unwrap_or("int.")
                .trim_end_matches('.')
                .to_string();
            format!(
                "Conversion failed when converting the {src} value '{value}' to data type {ty}."
            )
        };
        self
    }
}

/// Maps a SQLite error to the error SQL Server would raise.
pub fn map_error(
    e: rusqlite::Error,
    kind: Option<Kind>,
    target: Option<&'static Table>,
    values: &HashMap<String, Value>,
) -> SqlError {
    let msg = match &e {
        rusqlite::Error::SqliteFailure(f, m) => {
            if f.code == rusqlite::ErrorCode::DatabaseBusy
                || f.code == rusqlite::ErrorCode::DatabaseLocked
            {
                return SqlError::new(1222, 16, "Lock request time out period exceeded.");
            }
            m.clone().unwrap_or_else(|| f.to_string())
        }
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    if let Some(se) = db::sql_error_from_message(&msg) {
        return se;
    }
    let db = DATABASE_NAME;
    if let Some(rest) = msg.strip_prefix("UNIQUE constraint failed: ") {
        // Either `Table.col, Table.col` or, for an index over expressions
        // (nullable columns), `index 'Table__Index'`.
        let found = if let Some(ix) = rest
            .strip_prefix("index '")
            .and_then(|r| r.strip_suffix('\''))
        {
            ix.split_once("__").and_then(|(t, i)| {
                let t = schema::find_table_by_name(t)?;
                let u = t.uniques.iter().find(|u| u.name.eq_ignore_ascii_case(i))?;
                Some((t, u))
            })
        } else {
            let cols: Vec<(&str, &str)> = rest
                .split(", ")
                .filter_map(|tc| tc.split_once('.'))
                .collect();
            cols.first()
                .and_then(|(t, _)| schema::find_table_by_name(t))
                .and_then(|t| {
                    let u = t.uniques.iter().find(|u| {
                        u.columns.len() == cols.len()
                            && u.columns
                                .iter()
                                .zip(&cols)
                                .all(|(a, (_, b))| a.eq_ignore_ascii_case(b))
                    })?;
                    Some((t, u))
                })
        };
        return match found {
            Some((t, u)) if u.kind == UniqueKind::Index => SqlError::new(
                2601,
                14,
                format!(
                    "Cannot insert duplicate key row in object '{}' with unique index '{}'.\u{1}{}",
                    t.full_name(),
                    u.name,
                    u.columns.join(",").to_ascii_lowercase()
                ),
            ),
            Some((t, u)) => SqlError::new(
                2627,
                14,
                format!(
                    "Violation of PRIMARY KEY constraint '{}'. Cannot insert duplicate key in object '{}'.\u{1}{}",
                    u.name,
                    t.full_name(),
                    u.columns.join(",").to_ascii_lowercase()
                ),
            ),
            None => SqlError::new(
                2627,
                14,
                format!(
                    "Violation of UNIQUE KEY constraint. Cannot insert duplicate key in object '{}'.",
                    target.map(|t| t.full_name()).unwrap_or_default()
                ),
            ),
        };
    }
    if let Some(rest) = msg.strip_prefix("NOT NULL constraint failed: ") {
        let (t, c) = rest.split_once('.').unwrap_or(("?", rest));
        let full = schema::find_table_by_name(t)
            .map(|t| t.full_name())
            .unwrap_or_else(|| t.to_string());
        return SqlError::new(
            515,
            16,
            format!(
                "Cannot insert the value NULL into column '{c}', table '{db}.{full}'; column does not allow nulls. {} fails.",
                verb(kind)
            ),
        );
    }
    if let Some(rest) = msg.strip_prefix("CHECK constraint failed: ") {
        let parts: Vec<&str> = rest.split(':').collect();
        let table = target
            .map(|t| format!("{db}.{}", t.full_name()))
            .unwrap_or_default();
        match parts.as_slice() {
            ["len", col, len] => {
                let limit: usize = len.parse().unwrap_or(0);
                let long = values.values().find_map(|v| match v {
                    Value::Str(s) if s.chars().count() > limit => Some(s.clone()),
                    _ => None,
                });
                return match long {
                    Some(s) => SqlError::new(
                        2628,
                        16,
                        format!(
                            "String or binary data would be truncated in table '{table}', column '{col}'. Truncated value: '{}'.",
                            s.chars().take(limit).collect::<String>()
                        ),
                    ),
                    None => SqlError::new(8152, 16, "String or binary data would be truncated."),
                };
            }
            ["prec", _col, p, s] => {
                return SqlError::new(
                    8115,
                    16,
                    format!(
                        "Arithmetic overflow error converting numeric to data type numeric({p},{s})."
                    ),
                );
            }
            ["conv", col, ty] => {
                // The failing value and its type are filled in by
                // SqlError::with_conversion_value; this is the fallback.
                return if ty.starts_with("decimal") || ty.starts_with("numeric") {
                    SqlError::new(
                        8114,
                        16,
                        "Error converting data type varchar to numeric.\u{2}".to_string() + col,
                    )
                } else {
                    SqlError::new(
                        245,
                        16,
                        format!(
                            "Conversion failed when converting the varchar value to data type {ty}.\u{2}{col}"
                        ),
                    )
                };
            }
            ["range", _col, ty] => {
                return SqlError::new(
                    220,
                    16,
                    format!("Arithmetic overflow error for data type {ty}."),
                );
            }
            _ => {
                return SqlError::new(
                    547,
                    16,
                    format!(
                        "The {} statement conflicted with the CHECK constraint \"{rest}\". The conflict occurred in database \"{db}\", table \"{}\".",
                        verb(kind),
                        target.map(|t| t.full_name()).unwrap_or_default()
                    ),
                );
            }
        }
    }
    if let Some(col) = msg.strip_prefix("no such column: ") {
        let col = col.split(" - ").next().unwrap_or(col).trim();
        let c = col.rsplit('.').next().unwrap_or(col);
        return SqlError::invalid_column(c);
    }
    if let Some(t) = msg.strip_prefix("no such table: ") {
        return SqlError::invalid_object(t);
    }
    if let Some(f) = msg.strip_prefix("no such function: ") {
        return SqlError::unsupported(format!("function {f}"));
    }
    if msg.contains("syntax error") {
        let near = msg.split('"').nth(1).unwrap_or("").to_string();
        return SqlError::syntax(&near);
    }
    if msg.contains("interrupted") {
        return SqlError::new(0, 0, "interrupted");
    }
    SqlError::internal(msg)
}
