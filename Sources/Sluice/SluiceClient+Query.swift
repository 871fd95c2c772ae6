import Foundation
import SluicePostgres

extension SluiceClient {
    /// Runs `sql` on the client's connection and returns its rows. Database errors are thrown
    /// as `SluiceError`, naming `runID` when the statement is about one run.
    func query(
        _ sql: String, _ parameters: [(any PostgresEncodable)?] = [], runID: Int64? = nil
    ) async throws -> PostgresRows {
        do {
            return try await connection.query(sql, parameters)
        } catch {
            throw SluiceError.from(error, runID: runID)
        }
    }

    /// Runs `sql`, which returns one row, and returns that row's first column as `type`.
    /// Database and decoding errors are thrown as `SluiceError`.
    func queryValue<Value: PostgresDecodable>(
        _ type: Value.Type, _ sql: String, _ parameters: [(any PostgresEncodable)?] = []
    ) async throws -> Value {
        do {
            return try await connection.query(sql, parameters)[0].decode(type, at: 0)
        } catch {
            throw SluiceError.from(error)
        }
    }
}
