/// One row of a `PostgresRows` result.
public struct PostgresRow: Sendable {
    let storage: PostgresRows.Storage
    let rowIndex: Int

    /// The column names, in result order.
    public var columnNames: [String] { storage.columnNames }

    /// Returns the raw text of a column, or nil for NULL.
    public func text(at column: Int) -> String? {
        checkColumn(column)
        return storage.text(row: rowIndex, column: column)
    }

    /// Stops the program when `column` is not a column of the result: a wrong index is a bug in
    /// the query's caller, not a runtime condition.
    private func checkColumn(_ column: Int) {
        precondition(
            storage.columnNames.indices.contains(column),
            "column index \(column) out of range 0..<\(storage.columnNames.count)")
    }

    /// Returns whether the column at `column` is NULL.
    public func isNull(at column: Int) -> Bool {
        checkColumn(column)
        return storage.isNull(row: rowIndex, column: column)
    }

    /// Decodes the column at a zero-based position; decode an Optional to accept NULL.
    ///
    /// - Throws: `PostgresError` of kind `.decoding` naming the column, its PostgreSQL type and
    ///   the requested Swift type.
    public func decode<Value: PostgresDecodable>(_ type: Value.Type, at column: Int) throws -> Value {
        checkColumn(column)
        do {
            return try storage.withBytes(row: rowIndex, column: column) { bytes in
                guard let bytes else {
                    return try Value.decodeNull()
                }
                return try Value(postgresBytes: bytes)
            }
        } catch let failure as PostgresDecodingFailure {
            let text = text(at: column)
            let name = storage.columnNames[column]
            let typeName = PostgresTypeNames.name(oid: storage.columnTypes[column])
            throw PostgresError(
                kind: .decoding,
                message: "cannot decode column \"\(name)\" (\(typeName)) as \(Value.self): \(failure.reason)",
                value: text)
        }
    }

    /// Decodes the column named `name` (the first one, when names repeat).
    ///
    /// - Throws: `PostgresError` of kind `.decoding` when no column has that name or the value
    ///   does not decode.
    public func decode<Value: PostgresDecodable>(_ type: Value.Type, column name: String) throws -> Value {
        guard let column = storage.columnIndex(named: name) else {
            throw PostgresError(
                kind: .decoding,
                message: "column \"\(name)\" not found; the result has columns \(storage.columnNames)")
        }
        return try decode(type, at: column)
    }
}

/// Names of common built-in types by OID, for decoding errors; from PostgreSQL 15's pg_type.dat.
enum PostgresTypeNames {
    private static let names: [UInt32: String] = [
        16: "boolean", 17: "bytea", 18: "char", 19: "name", 20: "bigint", 21: "smallint",
        23: "integer", 25: "text", 26: "oid", 114: "json", 700: "real", 701: "double precision",
        1000: "boolean[]", 1005: "smallint[]", 1007: "integer[]", 1009: "text[]", 1015: "varchar[]",
        1016: "bigint[]", 1022: "double precision[]", 1042: "character", 1043: "varchar",
        1082: "date", 1083: "time", 1114: "timestamp", 1115: "timestamp[]", 1184: "timestamptz",
        1185: "timestamptz[]", 1186: "interval", 1700: "numeric", 2950: "uuid", 2951: "uuid[]",
        3802: "jsonb", 3807: "jsonb[]",
    ]

    /// Returns the SQL name of a built-in type, or `type oid N` for others.
    static func name(oid: UInt32) -> String {
        names[oid] ?? "type oid \(oid)"
    }
}
