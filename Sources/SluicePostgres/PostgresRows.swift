/// The rows and status of one statement's result, copied out of libpq so they can cross tasks.
///
/// A random-access collection of `PostgresRow`. Values are kept in PostgreSQL's text format and
/// decoded on access with `PostgresRow.decode`.
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

    init(
        columnNames: [String], columnTypes: [UInt32], values: [String?], affectedRows: Int,
        commandTag: String
    ) {
        storage = Storage(
            columnNames: columnNames, columnTypes: columnTypes, values: values,
            affectedRows: affectedRows, commandTag: commandTag)
    }

    /// Immutable, shared result data; `values` is row-major.
    final class Storage: Sendable {
        let columnNames: [String]
        let columnTypes: [UInt32]
        let values: [String?]
        let affectedRows: Int
        let commandTag: String
        let columnIndexByName: [String: Int]

        var rowCount: Int { columnNames.isEmpty ? 0 : values.count / columnNames.count }

        init(
            columnNames: [String], columnTypes: [UInt32], values: [String?], affectedRows: Int,
            commandTag: String
        ) {
            self.columnNames = columnNames
            self.columnTypes = columnTypes
            self.values = values
            self.affectedRows = affectedRows
            self.commandTag = commandTag
            // The first column wins when names repeat, as in most drivers.
            var indexByName: [String: Int] = [:]
            for (index, name) in columnNames.enumerated() where indexByName[name] == nil {
                indexByName[name] = index
            }
            columnIndexByName = indexByName
        }
    }
}
