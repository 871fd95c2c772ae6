import Foundation
import SluicePostgres
import Testing

@Suite struct CodingTests {
    @Test func scalarsRoundTrip() async throws {
        let connection = try await connectToFreshDatabase()
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_796_413_991.123456)
        let bytes = Data([0, 1, 0x7f, 0x80, 0xff])
        let rows = try await connection.query(
            """
            SELECT $1::text AS text, $2::int8 AS big, $3::int4 AS small, $4::int8 AS plain,
                   $5::float8 AS double, $6::bool AS flag, $7::timestamptz AS moment, $8::uuid AS id,
                   $9::bytea AS bytes, $10::jsonb AS document
            """,
            ["héllo 'quoted' \"double\" \\ 😀", Int64.max, Int32.min, 42, 0.1, true, date, id, bytes,
             PostgresJSON(#"{"a": [1, 2]}"#)])
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(try row.decode(String.self, column: "text") == "héllo 'quoted' \"double\" \\ 😀")
        #expect(try row.decode(Int64.self, at: 1) == Int64.max)
        #expect(try row.decode(Int32.self, at: 2) == Int32.min)
        #expect(try row.decode(Int.self, at: 3) == 42)
        #expect(try row.decode(Double.self, at: 4) == 0.1)
        #expect(try row.decode(Bool.self, at: 5) == true)
        #expect(try row.decode(Date.self, column: "moment").timeIntervalSince1970 == date.timeIntervalSince1970)
        #expect(try row.decode(UUID.self, column: "id") == id)
        #expect(try row.decode(Data.self, column: "bytes") == bytes)
        #expect(try row.decode(PostgresJSON.self, column: "document").text == #"{"a": [1, 2]}"#)
        #expect(rows.columnNames == ["text", "big", "small", "plain", "double", "flag", "moment", "id", "bytes", "document"])
    }

    @Test func doubleSpecialValuesRoundTrip() async throws {
        let connection = try await connectToFreshDatabase()
        let rows = try await connection.query(
            "SELECT $1::float8, $2::float8, $3::float8, $4::float8",
            [Double.infinity, -Double.infinity, Double.nan, 1e-300])
        let row = try #require(rows.first)
        #expect(try row.decode(Double.self, at: 0) == .infinity)
        #expect(try row.decode(Double.self, at: 1) == -.infinity)
        #expect(try row.decode(Double.self, at: 2).isNaN)
        #expect(try row.decode(Double.self, at: 3) == 1e-300)
    }

    @Test func nullsDecodeAsOptionals() async throws {
        let connection = try await connectToFreshDatabase()
        let missing: String? = nil
        let rows = try await connection.query("SELECT $1::text, $2::int8, NULL::timestamptz", [missing, nil])
        let row = try #require(rows.first)
        #expect(try row.decode(String?.self, at: 0) == nil)
        #expect(try row.decode(Int64?.self, at: 1) == nil)
        #expect(try row.decode(Date?.self, at: 2) == nil)
        #expect(row.isNull(at: 0))
        let error = try #require(throws: PostgresError.self) { try row.decode(Int64.self, at: 1) }
        #expect(error.kind == .decoding)
        #expect(error.message.contains("NULL"))
    }

    @Test func stringArraysWithSpecialCharactersRoundTrip() async throws {
        let connection = try await connectToFreshDatabase()
        let values: [String?] = ["a,b", "quote\"d", "back\\slash", nil, "NULL", "", " padded ", "{braces}", "ünïcödé 😀"]
        let rows = try await connection.query(
            "SELECT $1::text[] AS values, cardinality($1::text[]) AS count, ($1::text[])[4] IS NULL AS fourth_is_null",
            [values])
        let row = try #require(rows.first)
        #expect(try row.decode([String?].self, column: "values") == values)
        #expect(try row.decode(Int.self, column: "count") == values.count)
        #expect(try row.decode(Bool.self, column: "fourth_is_null"))
    }

    @Test func scalarArraysRoundTrip() async throws {
        let connection = try await connectToFreshDatabase()
        let rows = try await connection.query(
            "SELECT $1::int8[], $2::bool[], $3::text[], $4::int4[], $5::int8[]",
            [[Int64(1), -2, Int64.max], [true, false], ["plain", "x y"], [Int(7), 8], [Int64]()])
        let row = try #require(rows.first)
        #expect(try row.decode([Int64].self, at: 0) == [1, -2, Int64.max])
        #expect(try row.decode([Bool].self, at: 1) == [true, false])
        #expect(try row.decode([String].self, at: 2) == ["plain", "x y"])
        #expect(try row.decode([Int].self, at: 3) == [7, 8])
        #expect(try row.decode([Int64].self, at: 4) == [])
    }

    @Test func nulCharacterInStringParameterIsRejected() async throws {
        let connection = try await connectToFreshDatabase()
        let error = try await #require(throws: PostgresError.self) {
            try await connection.query("SELECT $1::text, $2::text", ["fine", "bad\u{0}value"])
        }
        #expect(error.kind == .invalidParameter)
        #expect(error.description.contains("$2"))
        #expect(error.description.contains("NUL"))
        #expect(!error.description.contains("bad"))
    }

    @Test func decodingErrorNamesColumnAndType() async throws {
        let connection = try await connectToFreshDatabase()
        let rows = try await connection.query("SELECT 'secret-value'::text AS label")
        let row = try #require(rows.first)
        let error = try #require(throws: PostgresError.self) { try row.decode(Int64.self, column: "label") }
        #expect(error.kind == .decoding)
        #expect(error.description.contains("\"label\""))
        #expect(error.description.contains("text"))
        #expect(error.description.contains("Int64"))
        #expect(!error.description.contains("secret-value"))
        #expect(error.debugDescription.contains("secret-value"))

        let missing = try #require(throws: PostgresError.self) { try row.decode(String.self, column: "nope") }
        #expect(missing.description.contains("nope"))
    }

    @Test func executeReturnsAffectedRows() async throws {
        let connection = try await connectToFreshDatabase()
        try await connection.execute("CREATE TABLE items (id int8 PRIMARY KEY, name text)")
        let inserted = try await connection.execute(
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, $1::int) g", [5])
        #expect(inserted == 5)
        let updated = try await connection.execute("UPDATE items SET name = $1 WHERE id > $2", ["renamed", 3])
        #expect(updated == 2)
        let rows = try await connection.query("SELECT id FROM items ORDER BY id")
        #expect(rows.map { try? $0.decode(Int64.self, at: 0) } == [1, 2, 3, 4, 5])
        #expect(rows.affectedRows == 5)
    }

    @Test func timestampsDecodeInEveryServerForm() async throws {
        let connection = try await connectToFreshDatabase()
        let rows = try await connection.query(
            """
            SELECT '2026-12-04 19:53:11.123456+00'::timestamptz, '2026-12-04 19:53:11+00'::timestamptz,
                   'infinity'::timestamptz, '-infinity'::timestamptz, '2026-12-04 19:53:11.5'::timestamp,
                   '0044-03-15 12:00:00+00 BC'::timestamptz, now()::text
            """)
        let row = try #require(rows.first)
        let expected = Date(timeIntervalSince1970: 1_796_413_991)
        #expect(try row.decode(Date.self, at: 0).timeIntervalSince1970 == expected.timeIntervalSince1970 + 0.123456)
        #expect(try row.decode(Date.self, at: 1) == expected)
        #expect(try row.decode(Date.self, at: 2) == .distantFuture)
        #expect(try row.decode(Date.self, at: 3) == .distantPast)
        #expect(try row.decode(Date.self, at: 4) == expected.addingTimeInterval(0.5))
        #expect(try row.decode(String.self, at: 6).hasSuffix("+00"))

        let ancient = try row.decode(Date.self, at: 5)
        let echoed = try await connection.query("SELECT $1::timestamptz::text", [ancient])
        let echoedText = try echoed.first?.decode(String.self, at: 0)
        #expect(echoedText == "0044-03-15 12:00:00+00 BC")
    }
}
