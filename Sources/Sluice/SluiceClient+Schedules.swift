import Foundation
import SluicePostgres

extension SluiceError.Code {
    /// SL102: no cron schedule has the given name.
    public static let scheduleNotFound = SluiceError.Code("SL102")
    /// SL103: the run started or finished, so it cannot be rescheduled or deleted as a scheduled
    /// run.
    public static let runAlreadyStarted = SluiceError.Code("SL103")
    /// SL100: the cron expression is invalid or can never fire.
    public static let invalidCron = SluiceError.Code("SL100")
    /// SL101: the time zone is not in PostgreSQL's time zone database.
    public static let invalidTimeZone = SluiceError.Code("SL101")
}

extension SluiceClient {
    // MARK: Cron schedules

    /// Creates a cron schedule that enqueues a run of `task` with `input` at every fire time, or
    /// updates the schedule of that name (`sluice.create_schedule`).
    ///
    /// Declaring the same schedule again, for example at every start of the application, keeps
    /// its next fire time and its paused state. A changed `cron` or `timeZone` recomputes the
    /// next fire time from now. Each run's metadata names the schedule (`schedule`) and the fire
    /// time (`fire_at`), and its `run_at` is the fire time.
    ///
    /// - Parameters:
    ///   - name: the schedule's unique name, 1 to 128 letters, digits and `_ . : / -`.
    ///   - cron: a cron expression with 5 fields, 6 fields (seconds first) or a macro such as
    ///     `@daily`; see docs/cron.md.
    ///   - timeZone: the IANA time zone the expression is read in; default `UTC`.
    ///   - task: the task to run; it must be defined in the database.
    ///   - input: the input of every run; it must encode to a JSON object.
    ///   - missed: what to enqueue for fire times missed while no coordinator ran; default
    ///     `.latest`.
    ///   - priority: the priority of the runs, 0 to 9; default nil (the task's priority).
    ///   - metadata: metadata of every run; default none.
    /// - Returns: the next fire time, or nil when the schedule is paused.
    /// - Throws: `SluiceError` with code `SL100` for an invalid expression, `SL101` for an
    ///   unknown time zone, `SL001` for a task that is not defined, `SL002` for an input that is
    ///   not a JSON object, `SL004` for an invalid name or priority.
    @discardableResult
    public func createSchedule<Input, Output>(
        name: String, cron: String, timeZone: String = "UTC", task: TaskDefinition<Input, Output>, input: Input,
        missed: MissedFirePolicy = .latest, priority: Int? = nil, metadata: [String: String] = [:]
    ) async throws -> Date? {
        try Validation.checkName("schedule name", name)
        if let priority {
            try Validation.check("priority", priority, in: 0...9)
        }
        let inputJSON = try JSONPayload.encodeObject(input, what: "input of schedule \(name)")
        let metadataJSON = try JSONPayload.encodeObject(metadata, what: "metadata of schedule \(name)")
        return try await queryValue(
            Date?.self, "SELECT sluice.create_schedule($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7, $8)",
            [name, cron, task.name, inputJSON, timeZone, metadataJSON, priority, missed.rawValue])
    }

    /// Pauses schedule `name`: no fire time enqueues a run until `resumeSchedule`. Returns false
    /// when it was already paused.
    ///
    /// - Throws: `SluiceError` with code `SL102` for an unknown schedule.
    @discardableResult
    public func pauseSchedule(_ name: String) async throws -> Bool {
        return try await queryValue(Bool.self, "SELECT sluice.pause_schedule($1)", [name])
    }

    /// Resumes schedule `name` at its first fire time after now and returns that time. Fire
    /// times that passed during the pause are skipped, whatever the missed-fire policy.
    ///
    /// - Throws: `SluiceError` with code `SL102` for an unknown schedule.
    @discardableResult
    public func resumeSchedule(_ name: String) async throws -> Date {
        return try await queryValue(Date.self, "SELECT sluice.resume_schedule($1)", [name])
    }

    /// Deletes schedule `name` and its fire history. Runs it enqueued are kept.
    ///
    /// - Throws: `SluiceError` with code `SL102` for an unknown schedule.
    public func deleteSchedule(_ name: String) async throws {
        _ = try await query("SELECT sluice.delete_schedule($1)", [name])
    }

    /// Returns every cron schedule, ordered by name.
    public func schedules() async throws -> [ScheduleInfo] {
        let rows = try await query(
            """
            SELECT name, expression, time_zone, task, missed, state = 'paused', paused_reason, next_fire_at,
                   last_fired_at, last_run_id, last_run_status::text, input, metadata, priority
            FROM sluice.schedule_status ORDER BY name
            """)
        return try rows.map { row in
            let missedText = try row.decode(String.self, at: 4)
            guard let missed = MissedFirePolicy(rawValue: missedText) else {
                throw SluiceError(
                    code: .database, message: "unknown missed-fire policy \"\(missedText)\" in sluice.schedules")
            }
            return ScheduleInfo(
                name: try row.decode(String.self, at: 0), cron: try row.decode(String.self, at: 1),
                timeZone: try row.decode(String.self, at: 2), task: try row.decode(String.self, at: 3),
                missed: missed, isPaused: try row.decode(Bool.self, at: 5),
                pausedReason: try row.decode(String?.self, at: 6), nextFireAt: try row.decode(Date?.self, at: 7),
                lastFiredAt: try row.decode(Date?.self, at: 8), lastRunID: try row.decode(Int64?.self, at: 9),
                lastRunStatus: try row.decode(String?.self, at: 10).map { try RunStatus(databaseText: $0) },
                input: try row.decode(PostgresJSON.self, at: 11), metadata: try row.decode(PostgresJSON.self, at: 12),
                priority: try row.decode(Int?.self, at: 13))
        }
    }

    // MARK: One-time scheduled runs

    /// Enqueues one run of `task` with `input` to start at `date` and returns its handle. A date
    /// in the past starts the run at once.
    ///
    /// - Parameters:
    ///   - options: as for `enqueue`; `runAt` and `delay` are ignored. Default none.
    ///   - connection: the connection to enqueue on, for your own transaction; default nil
    ///     uses the client's connection.
    /// - Throws: as `enqueue`.
    public func schedule<Input, Output>(
        _ task: TaskDefinition<Input, Output>, _ input: Input, at date: Date, options: EnqueueOptions = .init(),
        on connection: PostgresConnection? = nil
    ) async throws -> RunHandle<Output> {
        var options = options
        options.delay = nil
        options.runAt = date
        return try await enqueue(task, input, options: options, on: connection)
    }

    /// Moves run `runID`, which has not started yet, to start at `date` (`sluice.reschedule_run`).
    /// A date in the past starts it at once.
    ///
    /// - Throws: `SluiceError` with code `SL003` for an unknown run and `SL103` for a run that
    ///   started or finished.
    public func reschedule(runID: Int64, to date: Date) async throws {
        _ = try await query("SELECT sluice.reschedule_run($1, $2)", [runID, date], runID: runID)
    }

    /// Cancels run `runID`, which has not started yet (`sluice.delete_scheduled_run`).
    ///
    /// - Throws: `SluiceError` with code `SL003` for an unknown run and `SL103` for a run that
    ///   started or finished; cancel a started run with `cancel(runID:reason:)`.
    public func deleteScheduledRun(_ runID: Int64) async throws {
        _ = try await query("SELECT sluice.delete_scheduled_run($1)", [runID], runID: runID)
    }
}
