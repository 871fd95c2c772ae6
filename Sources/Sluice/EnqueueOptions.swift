import Foundation
import SluicePostgres

/// Per-run options of `SluiceClient.enqueue`, mapped onto the arguments of `sluice.enqueue`.
public struct EnqueueOptions: Sendable {
    /// The priority, 0 to 9, higher first; nil (default) uses the task's priority.
    public var priority: Int?
    /// Starts the run after this delay, 0 to 3650 days; default nil (now). Not together with
    /// `runAt`.
    public var delay: Duration?
    /// Starts the run at this time; default nil (now). Not together with `delay`.
    public var runAt: Date?
    /// Overrides the task's total number of attempts, 1 to 10000; default nil.
    public var maxAttempts: Int?
    /// A key, 1 to 512 characters, that makes a repeated enqueue of the same task return the
    /// first run; default nil.
    public var idempotencyKey: String?
    /// The run's metadata, a JSON object; default `{}`.
    public var metadata: PostgresJSON

    /// Creates options; `metadata` is a dictionary of strings. See the properties for defaults.
    public init(
        priority: Int? = nil, delay: Duration? = nil, runAt: Date? = nil, maxAttempts: Int? = nil,
        idempotencyKey: String? = nil, metadata: [String: String] = [:]
    ) {
        self.priority = priority
        self.delay = delay
        self.runAt = runAt
        self.maxAttempts = maxAttempts
        self.idempotencyKey = idempotencyKey
        // A dictionary of strings always encodes; NUL characters are rejected by `validate()`.
        self.metadata = (try? PostgresJSON(encoding: metadata)) ?? PostgresJSON("{}")
    }

    /// Creates options with metadata given as a JSON object.
    public init(
        priority: Int? = nil, delay: Duration? = nil, runAt: Date? = nil, maxAttempts: Int? = nil,
        idempotencyKey: String? = nil, metadataJSON: PostgresJSON
    ) {
        self.init(
            priority: priority, delay: delay, runAt: runAt, maxAttempts: maxAttempts,
            idempotencyKey: idempotencyKey)
        metadata = metadataJSON
    }

    /// Throws `SluiceError` naming the first invalid option: SL004 for ranges, SL002 for metadata.
    func validate() throws {
        if let priority {
            try Validation.check("priority", priority, in: 0...9)
        }
        if let maxAttempts {
            try Validation.check("maxAttempts", maxAttempts, in: 1...10000)
        }
        if let delay {
            try Validation.check("delay", delay, in: .zero ... .seconds(3650 * 86_400))
        }
        if delay != nil && runAt != nil {
            throw SluiceError(
                code: .invalidOption, message: "runAt and delay cannot both be given; pass one of them")
        }
        if let idempotencyKey, !(1...512).contains(idempotencyKey.count) {
            throw SluiceError(
                code: .invalidOption,
                message: "invalid idempotencyKey of \(idempotencyKey.count) characters; a key is 1 to 512 characters")
        }
        if JSONPayload.containsNULEscape(Data(metadata.text.utf8)) || metadata.text.contains("\0") {
            throw SluiceError(
                code: .invalidPayload,
                message: "the metadata contains a NUL character (U+0000), which PostgreSQL jsonb cannot store")
        }
    }
}
