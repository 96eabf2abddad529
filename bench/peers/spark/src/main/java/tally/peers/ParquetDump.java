// SPDX-License-Identifier: MIT
// Dumps ONE Parquet file with Apache Parquet's own Java reader (parquet-mr: ParquetFileReader for the footer,
// ParquetReader + GroupReadSupport for the records), independent of tally's writer and of Spark's reader.
//
//   ParquetDump [--rows-only] FILE
//
// Prints (stdout, UTF-8):
//   schema:            the footer's MessageType as parquet-mr prints it
//   created_by, key-value metadata keys, num_rows, row_groups
//   per row group and column chunk: codec, encodings, value count, sizes, statistics (Statistics.toString:
//   "min: .., max: .., num_nulls: .." as parquet-mr formats them, through the column's logical type)
//   rows:              then every record as one JSON line in schema order, e.g. {"word":"cat","count":4},
//                      timestamps (INT64 TIMESTAMP MILLIS/MICROS/NANOS, or INT96) as epoch milliseconds,
//                      strings escaped as Spark's to_json does (Jackson), null fields omitted
// --rows-only prints just the JSON lines (for diff). Exits 1 with the exception on any read error, 2 on usage.
package tally.peers;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.column.statistics.Statistics;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.hadoop.metadata.BlockMetaData;
import org.apache.parquet.hadoop.metadata.ColumnChunkMetaData;
import org.apache.parquet.hadoop.metadata.ParquetMetadata;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.LogicalTypeAnnotation.TimestampLogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

public final class ParquetDump {
    private static final String USAGE = "usage: ParquetDump [--rows-only] FILE";
    private static final JsonFactory JSON = new JsonFactory();

    public static void main(String[] argv) {
        boolean rowsOnly = false;
        String file = null;
        for (String a : argv) {
            if (a.equals("-h") || a.equals("--help")) { System.out.println(USAGE); return; }
            else if (a.equals("--rows-only")) rowsOnly = true;
            else if (a.startsWith("-") || file != null) { System.err.println("ParquetDump: unexpected argument " + a + "\n" + USAGE); System.exit(2); }
            else file = a;
        }
        if (file == null) { System.err.println(USAGE); System.exit(2); }
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        try {
            if (!rowsOnly) dumpMeta(file, out);
            if (!rowsOnly) out.println("rows:");
            for (String line : rows(file)) out.println(line);
            out.flush();
        } catch (Exception e) {
            out.flush();
            System.err.println("ParquetDump: " + file + ": " + messages(e));
            System.exit(1);
        }
    }

    /** The exception and its causes, "Class: message; caused by Class: message". */
    static String messages(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (b.length() > 0) b.append("; caused by ");
            b.append(t.getClass().getName()).append(": ").append(t.getMessage());
        }
        return b.toString();
    }

    static Path path(String file) {
        return new Path(new File(file).getAbsoluteFile().toURI());
    }

    static void dumpMeta(String file, PrintStream out) throws IOException {
        Configuration conf = new Configuration();
        try (ParquetFileReader r = ParquetFileReader.open(HadoopInputFile.fromPath(path(file), conf))) {
            ParquetMetadata footer = r.getFooter();
            MessageType schema = footer.getFileMetaData().getSchema();
            out.print("schema:\n" + schema);   // MessageType.toString ends with a newline
            out.println("created_by: " + footer.getFileMetaData().getCreatedBy());
            Map<String, String> kv = footer.getFileMetaData().getKeyValueMetaData();
            out.println("key_value_metadata: " + new TreeSet<>(kv.keySet()));
            out.println("num_rows: " + r.getRecordCount());
            List<BlockMetaData> blocks = footer.getBlocks();
            out.println("row_groups: " + blocks.size());
            for (int g = 0; g < blocks.size(); g++) {
                BlockMetaData b = blocks.get(g);
                out.println("row_group " + g + ": rows " + b.getRowCount() + ", total_byte_size " + b.getTotalByteSize());
                for (ColumnChunkMetaData c : b.getColumns()) {
                    Statistics<?> st = c.getStatistics();
                    List<String> enc = new ArrayList<>();
                    c.getEncodings().forEach(e -> enc.add(e.name()));
                    enc.sort(null);
                    out.println("  column " + c.getPath().toDotString() + ": type " + c.getPrimitiveType()
                        + ", codec " + c.getCodec() + ", encodings " + enc + ", values " + c.getValueCount()
                        + ", compressed " + c.getTotalSize() + " B, uncompressed " + c.getTotalUncompressedSize() + " B");
                    out.println("    statistics: " + (st == null ? "none" : st.toString()));
                }
            }
        }
    }

    /** Every record of the file as one JSON line, in file order. */
    static List<String> rows(String file) throws IOException {
        List<String> lines = new ArrayList<>();
        try (ParquetReader<Group> r = ParquetReader.builder(new GroupReadSupport(), path(file))
                .withConf(new Configuration()).build()) {
            for (Group g = r.read(); g != null; g = r.read()) {
                StringWriter w = new StringWriter();
                try (JsonGenerator j = JSON.createGenerator(w)) {
                    writeGroup(j, g);
                }
                lines.add(w.toString());
            }
        }
        return lines;
    }

    private static void writeGroup(JsonGenerator j, Group g) throws IOException {
        GroupType t = g.getType();
        j.writeStartObject();
        for (int i = 0; i < t.getFieldCount(); i++) {
            Type f = t.getType(i);
            int n = g.getFieldRepetitionCount(i);
            if (n == 0 && !f.isRepetition(Type.Repetition.REPEATED)) continue;   // null: omitted, as to_json does
            j.writeFieldName(f.getName());
            if (f.isRepetition(Type.Repetition.REPEATED)) {
                j.writeStartArray();
                for (int k = 0; k < n; k++) writeValue(j, g, i, k, f);
                j.writeEndArray();
            } else {
                writeValue(j, g, i, 0, f);
            }
        }
        j.writeEndObject();
    }

    private static void writeValue(JsonGenerator j, Group g, int i, int k, Type f) throws IOException {
        if (!f.isPrimitive()) { writeGroup(j, g.getGroup(i, k)); return; }
        PrimitiveType p = f.asPrimitiveType();
        LogicalTypeAnnotation lt = p.getLogicalTypeAnnotation();
        switch (p.getPrimitiveTypeName()) {
            case BOOLEAN: j.writeBoolean(g.getBoolean(i, k)); break;
            case INT32: j.writeNumber(g.getInteger(i, k)); break;
            case INT64: {
                long v = g.getLong(i, k);
                if (lt instanceof TimestampLogicalTypeAnnotation) {
                    switch (((TimestampLogicalTypeAnnotation) lt).getUnit()) {
                        case MICROS: v = Math.floorDiv(v, 1000L); break;
                        case NANOS: v = Math.floorDiv(v, 1000000L); break;
                        default: break;
                    }
                }
                j.writeNumber(v);
                break;
            }
            case INT96: j.writeNumber(int96Millis(g.getInt96(i, k))); break;
            case FLOAT: j.writeNumber(g.getFloat(i, k)); break;
            case DOUBLE: j.writeNumber(g.getDouble(i, k)); break;
            case BINARY:
            case FIXED_LEN_BYTE_ARRAY: {
                if (lt instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation
                        || lt instanceof LogicalTypeAnnotation.EnumLogicalTypeAnnotation
                        || lt instanceof LogicalTypeAnnotation.JsonLogicalTypeAnnotation)
                    j.writeString(g.getString(i, k));
                else
                    j.writeString(Base64.getEncoder().encodeToString(g.getBinary(i, k).getBytes()));
                break;
            }
            default: throw new UncheckedIOException(new IOException("unsupported type " + p));
        }
    }

    /** INT96 (Impala/Spark legacy timestamp): 8 bytes nanos of day then 4 bytes Julian day, little-endian. */
    static long int96Millis(Binary b) {
        ByteBuffer buf = b.toByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        long nanosOfDay = buf.getLong();
        int julianDay = buf.getInt();
        return (julianDay - 2440588L) * 86400000L + Math.floorDiv(nanosOfDay, 1000000L);
    }

    /** One JSON object from alternating names and values (String, Boolean, Long, Integer; null: omitted), Jackson's escaping. */
    static String json(Object... kv) {
        StringWriter w = new StringWriter();
        try (JsonGenerator j = JSON.createGenerator(w)) {
            j.writeStartObject();
            for (int i = 0; i < kv.length; i += 2) {
                Object v = kv[i + 1];
                if (v == null) continue;
                j.writeFieldName((String) kv[i]);
                if (v instanceof String) j.writeString((String) v);
                else if (v instanceof Boolean) j.writeBoolean((Boolean) v);
                else j.writeNumber(((Number) v).longValue());
            }
            j.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return w.toString();
    }
}
