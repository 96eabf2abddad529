// SPDX-License-Identifier: MIT
// Reads an output directory of tally's file sink with Spark's own batch readers, as a downstream Spark job would:
// spark.read.format(FMT).load(DIR). When DIR/_spark_metadata exists, Spark reads only the files its commit log
// lists (FileStreamSink.hasMetadata -> MetadataLogFileIndex); without it, every visible file under DIR.
//
//   SparkReadOutput FMT DIR [--mode last|rows|sum] [--schema DDL]     FMT: parquet | csv | json
//   SparkReadOutput --selftest DIR                                    DIR: a new or empty scratch directory
//
// Columns: word and count are required; window_start, window_end and epoch are optional; any other column is
// passed through. Output (stdout, UTF-8): JSON lines from Spark's to_json, columns in the order word, count,
// window_start, window_end, epoch, others; timestamps as epoch milliseconds (a string or numeric timestamp
// column of CSV/JSON is converted too: digits are taken as epoch ms, anything else is cast to TIMESTAMP, UTC).
//   --mode last  (default) per word (and window, when the files have window columns) the row with the highest
//                epoch, ties and no epoch column: the highest count; one line per key, sorted
//   --mode rows  every row, sorted by word, window_start, window_end, epoch, count
//   --mode sum   per word (and window) the sum of count: meaningful only if the files hold per-epoch deltas
// Sorting is Spark's binary (UTF-8 byte) string order, the order of `LC_ALL=C sort`.
// stderr: the schema Spark inferred, the files it read, and a WARNING naming any file the commit log lists that
// Spark skips (Spark reads a logged file only if its directory is DIR as given: a moved directory, or DIR through
// a symlink, reads as empty, silently). CSV is read as RFC 4180 (header, quote and escape
// '"', multiLine) with every column a string, then count/epoch cast to BIGINT (no inferSchema: it would turn a
// word "007" into 7). --schema gives an explicit DDL schema instead (e.g. "word STRING, count BIGINT").
// Exits 1 with the exception's message on any read error, 2 on usage errors.
package tally.peers;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.row_number;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.to_json;
import static org.apache.spark.sql.functions.unix_millis;
import static org.apache.spark.sql.functions.when;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.Callable;

import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.streaming.FileStreamSinkLog;
import org.apache.spark.sql.execution.streaming.SinkFileStatus;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

public final class SparkReadOutput {
    private static final String USAGE = String.join("\n",
        "usage: SparkReadOutput FMT DIR [--mode last|rows|sum] [--schema DDL]   (FMT: parquet|csv|json)",
        "       SparkReadOutput --selftest DIR",
        "  --mode last   per word (and window) the row with the highest epoch (no epoch: highest count); default",
        "  --mode rows   every row, sorted",
        "  --mode sum    per word (and window) the sum of count (files holding per-epoch deltas)",
        "  --schema DDL  explicit schema instead of inference, e.g. \"word STRING, count BIGINT, epoch BIGINT\"",
        "One JSON line per output row on stdout, sorted by word (UTF-8 byte order); Spark's schema and the files",
        "it read on stderr. DIR/_spark_metadata, when present, limits the read to the files it lists.");

    static final String IGNORE_METADATA = "spark.sql.streaming.fileStreamSink.ignoreMetadata";
    private static final List<String> WINDOWS = List.of("window_start", "window_end");

    public static void main(String[] argv) {
        String fmt = null, dir = null, mode = "last", schema = null, selftest = null;
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            switch (a) {
                case "-h": case "--help": System.out.println(USAGE); return;
                case "--mode": mode = value(argv, ++i, a); break;
                case "--schema": schema = value(argv, ++i, a); break;
                case "--selftest": selftest = value(argv, ++i, a); break;
                default:
                    if (a.startsWith("--")) usage("unknown option " + a);
                    if (fmt == null) fmt = a;
                    else if (dir == null) dir = a;
                    else usage("unexpected argument " + a);
            }
        }
        if (selftest == null) {
            if (fmt == null || dir == null) usage("FMT and DIR are required");
            if (!List.of("parquet", "csv", "json").contains(fmt)) usage("FMT must be parquet, csv or json, not " + fmt);
            if (!List.of("last", "rows", "sum").contains(mode)) usage("--mode must be last, rows or sum, not " + mode);
        }
        SparkSession spark = SparkSession.builder()
            .appName("tally-read-output")
            .master("local[1]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "1")
            .getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        int rc;
        if (selftest != null) {
            rc = selftest(spark, new File(selftest).getAbsoluteFile());
        } else {
            PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
            try {
                for (String line : read(spark, fmt, dir, mode, schema, true)) out.println(line);
                out.flush();
                rc = 0;
            } catch (Exception e) {
                out.flush();
                System.err.println("SparkReadOutput: " + fmt + " " + dir + ": " + ParquetDump.messages(e));
                rc = 1;
            }
        }
        spark.stop();
        System.exit(rc);
    }

    private static String value(String[] argv, int i, String opt) {
        if (i >= argv.length) usage("missing value for " + opt);
        return argv[i];
    }

    private static void usage(String msg) {
        System.err.println("SparkReadOutput: " + msg);
        System.err.println(USAGE);
        System.exit(2);
    }

    /** The raw DataFrame Spark gives for FMT DIR (the reader's options for tally's CSV dialect). */
    static Dataset<Row> load(SparkSession spark, String fmt, String dir, String schema) {
        DataFrameReader r = spark.read().format(fmt);
        if (fmt.equals("csv"))
            r = r.option("header", "true").option("quote", "\"").option("escape", "\"").option("multiLine", "true");
        if (schema != null) r = r.schema(schema);
        return r.load(dir);
    }

    /** Reads DIR and returns the output lines of MODE; with verbose, the schema and input files go to stderr. */
    static List<String> read(SparkSession spark, String fmt, String dir, String mode, String schema, boolean verbose) {
        Dataset<Row> raw = load(spark, fmt, dir, schema);
        if (verbose) {
            System.err.print("schema (as Spark inferred it):\n" + raw.schema().treeString());
            String[] files = raw.inputFiles();
            Arrays.sort(files);
            System.err.println("files read: " + files.length);
            for (String f : files) System.err.println("  " + f);
            List<String> unread = loggedButUnread(spark, dir, raw);
            if (!unread.isEmpty()) {
                System.err.println("WARNING: " + unread.size() + " file(s) committed in " + dir + "/_spark_metadata that"
                    + " Spark does not read: Spark reads a logged file only if its directory is DIR exactly as given"
                    + " (a moved directory, or one spelled another way, e.g. through a symlink, reads as empty):");
                for (String f : unread) System.err.println("  " + f);
            }
        }
        return lines(raw, mode);
    }

    /** The files DIR/_spark_metadata commits (read by Spark's own FileStreamSinkLog) that the DataFrame skips. */
    static List<String> loggedButUnread(SparkSession spark, String dir, Dataset<Row> df) {
        List<String> unread = new ArrayList<>();
        if (Boolean.parseBoolean(spark.conf().get(IGNORE_METADATA, "false"))) return unread;
        try {
            org.apache.hadoop.fs.Path md = new org.apache.hadoop.fs.Path(dir, "_spark_metadata");
            if (!md.getFileSystem(spark.sparkContext().hadoopConfiguration()).exists(md)) return unread;
            FileStreamSinkLog log = new FileStreamSinkLog(FileStreamSinkLog.VERSION(), spark, md.toString(),
                FileStreamSinkLog.$lessinit$greater$default$4());
            TreeSet<String> read = new TreeSet<>();
            for (String f : df.inputFiles()) read.add(new org.apache.hadoop.fs.Path(f).toUri().getPath());
            for (SinkFileStatus f : log.allFiles()) {
                String p = f.toFileStatus().getPath().toUri().getPath();
                if (!read.contains(p)) unread.add(f.path());
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        Collections.sort(unread);
        return unread;
    }

    static List<String> lines(Dataset<Row> raw, String mode) {
        StructType s = raw.schema();
        List<String> names = Arrays.asList(s.fieldNames());
        for (String req : List.of("word", "count"))
            if (!names.contains(req)) throw new IllegalArgumentException("no column '" + req + "' in " + s.simpleString());
        List<String> order = new ArrayList<>(List.of("word", "count"));
        for (String w : WINDOWS) if (names.contains(w)) order.add(w);
        boolean hasEpoch = names.contains("epoch");
        if (hasEpoch) order.add("epoch");
        for (String n : names) if (!order.contains(n)) order.add(n);

        List<Column> norm = new ArrayList<>();
        for (String n : order) {
            Column c = col(quote(n));
            if (n.equals("word")) c = c.cast("string");
            else if (n.equals("count") || n.equals("epoch")) c = c.cast("long");
            else if (WINDOWS.contains(n)) c = millis(c, s.apply(n).dataType());
            norm.add(c.as(n));
        }
        Dataset<Row> df = raw.select(norm.toArray(new Column[0]));

        List<Column> key = new ArrayList<>(List.of(col("word")));
        for (String w : WINDOWS) if (names.contains(w)) key.add(col(w));
        switch (mode) {
            case "rows":
                break;
            case "last": {
                List<Column> by = new ArrayList<>();
                if (hasEpoch) by.add(col("epoch").desc_nulls_last());
                by.add(col("count").desc_nulls_last());
                df = df.withColumn("_rn", row_number().over(Window.partitionBy(key.toArray(new Column[0]))
                        .orderBy(by.toArray(new Column[0]))))
                    .where(col("_rn").equalTo(1)).drop("_rn");
                break;
            }
            case "sum": {
                df = df.groupBy(key.toArray(new Column[0])).agg(sum(col("count")).cast("long").as("count"));
                List<Column> sel = new ArrayList<>(List.of(col("word"), col("count")));
                for (String w : WINDOWS) if (names.contains(w)) sel.add(col(w));
                df = df.select(sel.toArray(new Column[0]));
                break;
            }
            default: throw new IllegalArgumentException("unknown mode " + mode);
        }
        List<String> cols = Arrays.asList(df.columns());
        List<Column> sort = new ArrayList<>();
        for (String n : List.of("word", "window_start", "window_end", "epoch", "count"))
            if (cols.contains(n)) sort.add(col(n).asc_nulls_first());
        Column[] all = cols.stream().map(n -> col(quote(n))).toArray(Column[]::new);
        Dataset<String> out = df.select(to_json(struct(all)).as("j"), col("*"))
            .orderBy(sort.toArray(new Column[0])).select(col("j")).as(Encoders.STRING());
        List<String> lines = new ArrayList<>(out.collectAsList());
        // to_json is Jackson's: same bytes for a word as the Spark peer's Kafka output
        return lines;
    }

    private static String quote(String n) { return "`" + n.replace("`", "``") + "`"; }

    /** A timestamp column as epoch milliseconds, whatever the format made of it. */
    private static Column millis(Column c, DataType t) {
        if (t.equals(DataTypes.TimestampType)) return unix_millis(c);
        if (t.equals(DataTypes.TimestampNTZType) || t.equals(DataTypes.DateType)) return unix_millis(c.cast("timestamp"));
        if (t.equals(DataTypes.StringType))
            return when(c.rlike("^-?[0-9]+$"), c.cast("long")).otherwise(unix_millis(c.cast("timestamp")));
        return c.cast("long");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Self-test: directories laid out as a streaming file sink leaves them, written by Spark's own batch writer
    // (and one Parquet file by parquet-mr's example writer, with the schema tally writes), with a hand-made
    // _spark_metadata that commits only some of the part files.

    private static int passed, failed;

    private static void check(String name, Object got, Object want) {
        if (got.equals(want)) {
            passed++;
            System.out.println("ok   " + name);
        } else {
            failed++;
            System.out.println("FAIL " + name + "\n     want " + want + "\n     got  " + got);
        }
    }

    private static void checkError(String name, Callable<?> c, String needle) {
        try {
            Object r = c.call();
            failed++;
            System.out.println("FAIL " + name + ": no error, got " + r);
        } catch (Exception e) {
            String m = ParquetDump.messages(e);
            String first = m.length() > 300 ? m.substring(0, 300) + "..." : m;
            if (m.contains(needle)) {
                passed++;
                System.out.println("ok   " + name + " (error: " + first + ")");
            } else {
                failed++;
                System.out.println("FAIL " + name + ": error without '" + needle + "': " + first);
            }
        }
    }

    static final String[] WORDS = {"cat", "say\"hi\"", "back\\slash", "a,b", "ctl\u0001x", "na\u00efve",
        "\u65e5\u672c", "007", "q'uote"};
    static final long W0 = 1764691200000L;   // 2025-12-02T16:00:00Z, the one window of the test data
    static final long W1 = W0 + 60000L;

    private static final StructType SCHEMA = new StructType(new StructField[] {
        DataTypes.createStructField("word", DataTypes.StringType, false),
        DataTypes.createStructField("count", DataTypes.LongType, false),
        DataTypes.createStructField("window_start", DataTypes.TimestampType, false),
        DataTypes.createStructField("window_end", DataTypes.TimestampType, false),
        DataTypes.createStructField("epoch", DataTypes.LongType, false)});

    private static Row row(String w, long count, long epoch) {
        return RowFactory.create(w, count, new Timestamp(W0), new Timestamp(W1), epoch);
    }

    private static String line(String w, long count, long epoch) {
        return ParquetDump.json("word", w, "count", count, "window_start", W0, "window_end", W1, "epoch", epoch);
    }

    /** Writes rows with Spark's batch writer (one part file) into a staging dir, moves the part file into dir. */
    private static List<File> writeBatch(SparkSession spark, String fmt, List<Row> rows, File staging, File dir)
            throws IOException {
        spark.createDataFrame(rows, SCHEMA).coalesce(1).write().format(fmt)
            .option("header", "true").option("escape", "\"").mode("overwrite").save(staging.getPath());
        dir.mkdirs();
        List<File> moved = new ArrayList<>();
        File[] parts = staging.listFiles((d, n) -> n.startsWith("part-"));
        Arrays.sort(parts);
        for (File p : parts) {
            File to = new File(dir, p.getName());
            Files.move(p.toPath(), to.toPath(), StandardCopyOption.REPLACE_EXISTING);
            moved.add(to);
        }
        return moved;
    }

    /** _spark_metadata/NAME as tally writes it: "v1\n" then one SinkFileStatus JSON line per file, "\n"-ended. */
    private static void writeLog(File dir, String name, List<File> files) throws IOException {
        File md = new File(dir, "_spark_metadata");
        md.mkdirs();
        StringBuilder b = new StringBuilder("v1\n");
        for (File f : files)
            b.append(ParquetDump.json("path", "file://" + f.getAbsolutePath(), "size", f.length(), "isDir", false,
                "modificationTime", f.lastModified(), "blockReplication", 1, "blockSize", 33554432,
                "action", "add")).append('\n');
        Files.writeString(new File(md, name).toPath(), b.toString());
    }

    private static TreeSet<String> names(List<File> files) {
        TreeSet<String> s = new TreeSet<>();
        for (File f : files) s.add(f.getName());
        return s;
    }

    private static TreeSet<String> inputNames(Dataset<Row> df) {
        TreeSet<String> s = new TreeSet<>();
        for (String f : df.inputFiles()) s.add(f.substring(f.lastIndexOf('/') + 1));
        return s;
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper MAPPER = new com.fasterxml.jackson.databind.ObjectMapper();

    /** Expected lines in the order Spark sorts them: word (UTF-8 bytes, unsigned), then epoch, then count. */
    private static List<String> sorted(List<String> l) {
        List<String> c = new ArrayList<>(l);
        c.sort((a, b) -> {
            try {
                var x = MAPPER.readTree(a);
                var y = MAPPER.readTree(b);
                int r = Arrays.compareUnsigned(x.get("word").asText().getBytes(StandardCharsets.UTF_8),
                    y.get("word").asText().getBytes(StandardCharsets.UTF_8));
                if (r == 0) r = Long.compare(x.path("epoch").asLong(), y.path("epoch").asLong());
                if (r == 0) r = Long.compare(x.path("count").asLong(), y.path("count").asLong());
                return r;
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        return c;
    }

    static int selftest(SparkSession spark, File root) {
        try {
            if (root.exists() && root.list().length > 0) throw new IOException(root + " is not empty");
            root.mkdirs();
            spark.conf().set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MILLIS");
            File staging = new File(root, "staging");
            File sparkParquetPart = null;
            List<String> wantBatch0 = new ArrayList<>();

            for (String fmt : List.of("parquet", "csv", "json")) {
                File dir = new File(root, fmt);
                List<Row> b0 = new ArrayList<>(), b1 = new ArrayList<>(), b2 = new ArrayList<>();
                wantBatch0.clear();
                List<String> wantLast = new ArrayList<>(), wantRows = new ArrayList<>(), wantSum = new ArrayList<>(),
                    wantUncommitted = new ArrayList<>();
                for (int i = 0; i < WORDS.length; i++) {
                    b0.add(row(WORDS[i], i + 1, 0));
                    b1.add(row(WORDS[i], 2L * (i + 1), 1));
                    wantRows.add(line(WORDS[i], i + 1, 0));
                    wantBatch0.add(line(WORDS[i], i + 1, 0));
                    wantRows.add(line(WORDS[i], 2L * (i + 1), 1));
                    wantLast.add(line(WORDS[i], 2L * (i + 1), 1));
                    wantSum.add(ParquetDump.json("word", WORDS[i], "count", 3L * (i + 1), "window_start", W0, "window_end", W1));
                    if (i > 0) wantUncommitted.add(line(WORDS[i], 2L * (i + 1), 1));
                }
                // batch 2: written but never committed (as if tally died before writing _spark_metadata/2)
                b2.add(row("cat", 999, 2));
                b2.add(row("ghost", 1, 2));
                wantUncommitted.add(line("cat", 999, 2));
                wantUncommitted.add(line("ghost", 1, 2));
                List<File> f0 = writeBatch(spark, fmt, b0, new File(staging, fmt + "-0"), dir);
                List<File> f1 = writeBatch(spark, fmt, b1, new File(staging, fmt + "-1"), dir);
                List<File> f2 = writeBatch(spark, fmt, b2, new File(staging, fmt + "-2"), dir);
                writeLog(dir, "0", f0);
                if (fmt.equals("parquet")) sparkParquetPart = f0.get(0);
                writeLog(dir, "1", f1);
                String d = dir.getPath();
                TreeSet<String> committed = names(f0);
                committed.addAll(names(f1));
                check(fmt + ": Spark reads exactly the committed files " + committed,
                    inputNames(load(spark, fmt, d, null)), committed);
                check(fmt + ": --mode last", read(spark, fmt, d, "last", null, false), sorted(wantLast));
                check(fmt + ": --mode rows", read(spark, fmt, d, "rows", null, false), sorted(wantRows));
                check(fmt + ": --mode sum", read(spark, fmt, d, "sum", null, false), sorted(wantSum));
                check(fmt + ": --schema DDL", read(spark, fmt, d, "last",
                    "word STRING, count BIGINT, window_start TIMESTAMP, window_end TIMESTAMP, epoch BIGINT", false),
                    sorted(wantLast));
                // The same directory with the commit log ignored (Spark's switch), then without it: all part files.
                spark.conf().set(IGNORE_METADATA, "true");
                check(fmt + ": " + IGNORE_METADATA + "=true reads the uncommitted file too",
                    read(spark, fmt, d, "last", null, false), sorted(wantUncommitted));
                spark.conf().unset(IGNORE_METADATA);
                File md = new File(dir, "_spark_metadata"), hidden = new File(root, fmt + "-metadata-away");
                Files.move(md.toPath(), hidden.toPath());
                check(fmt + ": without _spark_metadata every part file is read",
                    read(spark, fmt, d, "last", null, false), sorted(wantUncommitted));
                Files.move(hidden.toPath(), md.toPath());
                check(fmt + ": _spark_metadata restored, committed files only again",
                    read(spark, fmt, d, "last", null, false), sorted(wantLast));
            }

            // CSV column types: strings (no inferSchema), so "007" stays a word; count BIGINT.
            Dataset<Row> csv = load(spark, "csv", new File(root, "csv").getPath(), null);
            check("csv: columns read as strings", csv.schema().simpleString(),
                "struct<word:string,count:string,window_start:string,window_end:string,epoch:string>");
            Dataset<Row> pq = load(spark, "parquet", new File(root, "parquet").getPath(), null);
            check("parquet (Spark-written, TIMESTAMP_MILLIS): Spark's schema", pq.schema().simpleString(),
                "struct<word:string,count:bigint,window_start:timestamp,window_end:timestamp,epoch:bigint>");

            // ParquetDump on a part file Spark wrote.
            File sparkPart = sparkParquetPart;
            List<String> dumped = ParquetDump.rows(sparkPart.getPath());
            check("ParquetDump reads Spark's part file " + sparkPart.getName() + " (" + dumped.size() + " rows)",
                sorted(dumped), sorted(wantBatch0));

            // A file with tally's Parquet schema, written by parquet-mr (not Spark), committed by the log.
            File tally = new File(root, "tally-parquet");
            tally.mkdirs();
            File tf = new File(tally, "part-00000-epoch-7.parquet");
            MessageType ts = MessageTypeParser.parseMessageType("message tally {\n"
                + "  required binary word (STRING);\n  required int64 count;\n"
                + "  required int64 window_start (TIMESTAMP(MILLIS,true));\n"
                + "  required int64 window_end (TIMESTAMP(MILLIS,true));\n  required int64 epoch;\n}");
            List<String> wantTally = new ArrayList<>();
            try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new org.apache.hadoop.fs.Path(tf.toURI()))
                    .withType(ts).withConf(new Configuration()).withCompressionCodec(CompressionCodecName.SNAPPY).build()) {
                SimpleGroupFactory gf = new SimpleGroupFactory(ts);
                for (int i = 0; i < WORDS.length; i++) {
                    w.write(gf.newGroup().append("word", WORDS[i]).append("count", 10L * (i + 1))
                        .append("window_start", W0).append("window_end", W1).append("epoch", 7L));
                    wantTally.add(line(WORDS[i], 10L * (i + 1), 7));
                }
            }
            writeLog(tally, "0", List.of(tf));
            check("parquet-mr file with tally's schema: Spark's schema",
                load(spark, "parquet", tally.getPath(), null).schema().simpleString(),
                "struct<word:string,count:bigint,window_start:timestamp,window_end:timestamp,epoch:bigint>");
            check("parquet-mr file with tally's schema: --mode last",
                read(spark, "parquet", tally.getPath(), "last", null, false), sorted(wantTally));
            check("parquet-mr file with tally's schema: ParquetDump rows", ParquetDump.rows(tf.getPath()), wantTally);
            // The log holds absolute paths: a moved directory no longer reads.
            File moved = new File(root, "tally-parquet-moved");
            Files.move(tally.toPath(), moved.toPath());
            checkError("a directory moved after commit: no file to infer a schema from (the log's paths are absolute)",
                () -> read(spark, "parquet", moved.getPath(), "last", null, false), "Unable to infer schema");
            check("a directory moved after commit, with --schema: silently empty",
                read(spark, "parquet", moved.getPath(), "last", "word STRING, count BIGINT", false), List.of());
            check("a directory moved after commit: loggedButUnread names the file",
                loggedButUnread(spark, moved.getPath(), load(spark, "parquet", moved.getPath(), "word STRING, count BIGINT")),
                List.of("file://" + tf.getAbsolutePath()));
            Files.move(moved.toPath(), tally.toPath());
            // DIR given through a symlink: the logged paths' directory is not DIR as given.
            File link = new File(root, "tally-parquet-link");
            Files.createSymbolicLink(link.toPath(), tally.toPath());
            check("DIR through a symlink, with --schema: silently empty",
                read(spark, "parquet", link.getPath(), "last", "word STRING, count BIGINT", false), List.of());
            check("DIR as logged: loggedButUnread is empty",
                loggedButUnread(spark, tally.getPath(), load(spark, "parquet", tally.getPath(), null)), List.of());

            // Compaction: 12 batches; 9.compact holds all entries of 0..9, batch files 0..8 deleted (as Spark's
            // sink may do), 10 and 11 plain; batch 12's file is uncommitted.
            File cdir = new File(root, "compact");
            List<File> live = new ArrayList<>();
            List<String> wantC = List.of(line("cat", 12, 11), line("dog", 24, 11));
            for (int k = 0; k <= 12; k++) {
                List<File> f = writeBatch(spark, "parquet", List.of(row("cat", k + 1, k), row("dog", 2L * (k + 1), k)),
                    new File(staging, "compact-" + k), cdir);
                if (k <= 9) live.addAll(f);
                if (k == 9) writeLog(cdir, "9.compact", live);
                if (k == 10 || k == 11) { writeLog(cdir, Integer.toString(k), f); live.addAll(f); }
            }
            check("compact: 9.compact + 10 + 11 (0..8 gone): --mode last",
                read(spark, "parquet", cdir.getPath(), "last", null, false), wantC);
            check("compact: files read", inputNames(load(spark, "parquet", cdir.getPath(), null)), names(live));
            File md = new File(cdir, "_spark_metadata");
            Files.move(new File(md, "9.compact").toPath(), new File(md, "9").toPath());
            checkError("compact: batch 9 written as '9' instead of '9.compact' after batch 10 fails",
                () -> read(spark, "parquet", cdir.getPath(), "last", null, false), "9.compact doesn't exist");
            Files.move(new File(md, "9").toPath(), new File(md, "9.compact").toPath());

            // A committed file that is missing, and a commit log with no batch yet.
            for (String fmt : List.of("json", "parquet")) {
                File gone = new File(root, "missing-" + fmt);
                List<File> gf = writeBatch(spark, fmt, List.of(row("cat", 1, 0)), new File(staging, "missing-" + fmt), gone);
                List<File> kept = writeBatch(spark, fmt, List.of(row("dog", 2, 0)), new File(staging, "kept-" + fmt), gone);
                gf.addAll(kept);
                writeLog(gone, "0", gf);
                Files.delete(gf.get(0).toPath());
                checkError(fmt + ": a committed file deleted (another one left) fails the read",
                    () -> read(spark, fmt, gone.getPath(), "rows", null, false), "does not exist");
                checkError(fmt + ": a committed file deleted, with --schema, fails the read",
                    () -> read(spark, fmt, gone.getPath(), "rows", "word STRING, count BIGINT, epoch BIGINT", false),
                    "does not exist");
            }
            File empty = new File(root, "empty");
            writeBatch(spark, "parquet", List.of(row("cat", 1, 0)), new File(staging, "empty"), empty);
            new File(empty, "_spark_metadata").mkdirs();
            checkError("an empty _spark_metadata (nothing committed yet), schema inferred",
                () -> read(spark, "parquet", empty.getPath(), "last", null, false), "Unable to infer schema");
            check("an empty _spark_metadata with --schema: no rows",
                read(spark, "parquet", empty.getPath(), "last", "word STRING, count BIGINT", false), List.of());
        } catch (Exception e) {
            failed++;
            System.out.println("FAIL selftest aborted: " + ParquetDump.messages(e));
            e.printStackTrace();
        }
        System.out.println("selftest: " + passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
