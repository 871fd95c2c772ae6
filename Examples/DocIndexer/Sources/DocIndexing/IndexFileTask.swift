import Sluice

/// The `index-file` task's name and options, shared by the worker that runs it and the
/// programs that enqueue it, so both define it the same way.
public enum IndexFileTask {
    /// The task name, as SQL callers pass it to `sluice.enqueue`.
    public static let name = "index-file"

    /// Three attempts for errors that may pass (the worker's own failures); a file that cannot
    /// be read fails at once with a `NonRetryable` error. One attempt may take 60 s.
    public static let options = TaskOptions(
        retries: .exponential(maxAttempts: 3), timeout: .seconds(60))

    /// Indexes the file named by `input`, turning a `FileIndexError` into a non-retryable failure
    /// whose message names the path and the reason.
    public static func run(_ input: IndexFileInput) throws -> FileIndex {
        do {
            return try FileIndexer.index(path: input.path)
        } catch let error as FileIndexError {
            throw NonRetryable(error)
        }
    }
}
