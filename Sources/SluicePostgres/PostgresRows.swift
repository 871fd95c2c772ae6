import CLibPQ

/// The rows and status of one statement's result, which may cross tasks and threads.
///
/// A random-access collection of `PostgresRow`. Values stay in libpq's result, in PostgreSQL's
/// text format, and are decoded on access with `PostgresRow.decode`.
public struct PostgresRows: RandomAccessCollection, Sendable {
    let storage: Storage

    /// The column names, in result order.
    public var columnNames: [String] { storage.columnNames }

    /// The row count reported by the command tag: rows inserted, updated, deleted, selected or
    /// fetched; 0 for commands without a count.
    public var affectedRows: Int { storage.affectedRows }

    /// The command tag, such as `INSERT 0 1` or `SELECT 3`.
    public var commandTag: String { storage.commandTag }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.rowCount }

    public subscript(position: Int) -> PostgresRow {
        precondition(indices.contains(position), "row index \(position) out of range 0..<\(count)")
        return PostgresRow(storage: storage, rowIndex: position)
    }

    /// Takes ownership of `result`, a PGresult with status `PGRES_TUPLES_OK`, `PGRES_COMMAND_OK`,
    /// `PGRES_EMPTY_QUERY` or `PGRES_SINGLE_TUPLE`, and frees it when the last rows or row using it
    /// is released.
    init(result: OpaquePointer) {
        storage = Storage(result: result)
    }

    /// A libpq result and the facts read from it once. Values are read from libpq's buffers on
    /// access, because copying every value into a Swift string up front, and releasing the
    /// strings, took 3% of the CPU of an SDK worker draining no-op runs.
    ///
    /// `@unchecked Sendable`: libpq's documentation (PostgreSQL 15, section "Behavior in
    /// Threaded Programs") states that a PGresult is normally read-only after creation and may
    /// be passed between threads, unless a PGresult-modifying function of the sections
    /// "Miscellaneous Functions" or "Event System" (such as `PQsetvalue`) is used on it. This
    /// module calls none of them.
    final class Storage: @unchecked Sendable {
        private let result: OpaquePointer
        let columnNames: [String]
        let columnTypes: [UInt32]
        let rowCount: Int
        let affectedRows: Int
        let commandTag: String

        init(result: OpaquePointer) {
            self.result = result
            let columnCount = Int(PQnfields(result))
            var names: [String] = []
            var types: [UInt32] = []
            names.reserveCapacity(columnCount)
            types.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                names.append(String(cString: PQfname(result, column)))
                types.append(PQftype(result, column))
            }
            columnNames = names
            columnTypes = types
            // A result without columns has no value to read, so it counts no rows, even where
            // PQntuples counts some (as for `SELECT FROM t`).
            rowCount = columnCount == 0 ? 0 : Int(PQntuples(result))
            commandTag = String(cString: PQcmdStatus(result))
            affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
        }

        deinit {
            PQclear(result)
        }

        /// Returns whether the value at `row` and `column` is NULL. Both must be in range.
        func isNull(row: Int, column: Int) -> Bool {
            PQgetisnull(result, Int32(row), Int32(column)) == 1
        }

        /// Returns the text of the value at `row` and `column`, or nil for NULL. Both must be in
        /// range.
        func text(row: Int, column: Int) -> String? {
            withBytes(row: row, column: column) { bytes in
                bytes.map { String(decoding: $0, as: UTF8.self) }
            }
        }

        /// Calls `body` with the UTF-8 text of the value at `row` and `column`, or with nil for
        /// NULL. Both must be in range. The bytes are valid only during the call.
        func withBytes<Value>(
            row: Int, column: Int, _ body: (UnsafeRawBufferPointer?) throws -> Value
        ) rethrows -> Value {
            let row = Int32(row), column = Int32(column)
            if PQgetisnull(result, row, column) == 1 {
                return try body(nil)
            }
            // PQgetvalue never returns NULL for a cell in range. PQgetlength counts the value's
            // bytes without the zero byte that libpq appends, so the buffer is the whole text.
            // The bytes live as long as the result, which `self` keeps alive during the call.
            let bytes = UnsafeRawBufferPointer(
                start: PQgetvalue(result, row, column), count: Int(PQgetlength(result, row, column)))
            return try body(bytes)
        }

        /// Returns the position of the first column named `name`, the one most drivers pick when
        /// names repeat.
        func columnIndex(named name: String) -> Int? {
            columnNames.firstIndex(of: name)
        }
    }
}
