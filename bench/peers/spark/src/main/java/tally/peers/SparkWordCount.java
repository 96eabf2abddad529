// SPDX-License-Identifier: MIT
// Spark Structured Streaming peer for tally's benchmark: the seed job, Kafka -> word count -> Kafka, or with
// --input-path the same count from a directory of text files -> Kafka.
//
//   readStream kafka(input, earliest) -> CAST(value AS STRING) AS line       (or: readStream text(input-path),
//                                                                              column value AS line)
//     -> explode(split(line, " ")) AS word -> (drop "") -> groupBy(word).count()
//     -> to_json(struct(word, count)) AS value, word AS key
//     -> writeStream kafka(output), checkpointLocation, outputMode update, ProcessingTime trigger
//        (or Trigger.AvailableNow with --trigger available-now: every file there at start, then stop)
//
// With --window-size-ms, the windowed variant (issue 13: event-time windows):
//
//   readStream kafka(input, earliest) -> CAST(value AS STRING) AS line, timestamp (the Kafka record timestamp)
//     -> withWatermark("timestamp", "<delay> milliseconds") (when --watermark-delay-ms is given)
//     -> explode(split(line, " ")) AS word -> (drop "")
//     -> groupBy(window(timestamp, "<size> milliseconds", "<slide> milliseconds"), word).count()
//     -> to_json(struct(window, word, count)) AS value, "<window start ms> <word>" AS key
//     -> writeStream kafka(output), checkpointLocation, outputMode append (default) | update | complete,
//        ProcessingTime or AvailableNow trigger; spark.sql.session.timeZone=UTC, so the JSON times end in "Z"
//
// Options (each also readable as a system property of the same name, e.g. -Dbootstrap=...):
//   --bootstrap B (--input T | --input-path DIR) --output O --checkpoint D [--trigger-ms 1000]
//   [--trigger processing-time|available-now] [--max-files-per-trigger N] [--master local[2]]
//   [--shuffle-partitions 4] [--window-size-ms MS [--window-slide-ms MS] [--watermark-delay-ms MS]]
//   [--output-mode update|append|complete] [--conf key=value]...
// The windowed variant needs --input: its event time is the Kafka record timestamp, and files have none.
// Logs at WARN (log4j2.properties, stderr). With a ProcessingTime trigger it runs until killed; Spark's own
// shutdown hook stops the query and the SparkContext on SIGTERM. With available-now it exits 0 once every
// batch is written (1 if the query failed). The Kafka sink is at-least-once (Spark has no transactional Kafka
// sink). The file source skips names starting with "." or "_" (files being written) and records the files
// each batch read in the checkpoint, so a restart with the same checkpoint reads only new files.
package tally.peers;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.explode;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.split;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.to_json;
import static org.apache.spark.sql.functions.window;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.DataStreamReader;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryException;
import org.apache.spark.sql.streaming.Trigger;

public final class SparkWordCount {
    private static final String USAGE = String.join("\n",
        "usage: SparkWordCount --bootstrap B (--input T | --input-path DIR) --output O --checkpoint D",
        "                      [--trigger-ms 1000] [--trigger processing-time|available-now]",
        "                      [--master local[2]] [--shuffle-partitions 4] [--max-files-per-trigger N]",
        "                      [--window-size-ms MS [--window-slide-ms MS] [--watermark-delay-ms MS]]",
        "                      [--output-mode update|append|complete] [--conf key=value]...",
        "  --input               input topic (Kafka source, from the earliest offsets)",
        "  --input-path          input directory of text files instead (file source, one record a line)",
        "  --max-files-per-trigger  with --input-path: the file source's maxFilesPerTrigger (default: no bound)",
        "  --trigger-ms          micro-batch ProcessingTime trigger interval (default 1000)",
        "  --trigger             processing-time (default: run until killed) or available-now (Trigger.AvailableNow:",
        "                        what the source holds at start, in as many batches as its limits make, then exit)",
        "  --master              Spark master (default local[2])",
        "  --shuffle-partitions  spark.sql.shuffle.partitions (default 4)",
        "  --window-size-ms      count per event-time window of this length (the Kafka timestamp is the event time):",
        "                        value {\"window\":{\"start\":..,\"end\":..},\"word\":..,\"count\":..}, key \"<start ms> <word>\"",
        "  --window-slide-ms     distance between window starts (default: the size, tumbling windows)",
        "  --watermark-delay-ms  withWatermark(\"timestamp\", delay); needed by append",
        "  --output-mode         update (default without windows), append (default with windows), complete",
        "  --conf key=value      any further Spark conf (repeatable); kafka.* keys go to the Kafka source and sink",
        "Every option can also be given as a system property of the same name (-Dbootstrap=...).");

    private static final String[] NAMES = {
        "bootstrap", "input", "input-path", "output", "checkpoint", "trigger-ms", "trigger", "master",
        "shuffle-partitions", "max-files-per-trigger", "window-size-ms", "window-slide-ms", "watermark-delay-ms",
        "output-mode"};

    public static void main(String[] argv) throws Exception {
        Map<String, String> opt = new LinkedHashMap<>();
        List<String> confs = new ArrayList<>();
        for (String n : NAMES) {
            String v = System.getProperty(n);
            if (v != null) opt.put(n, v);
        }
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (a.equals("-h") || a.equals("--help")) { System.out.println(USAGE); return; }
            if (!a.startsWith("--")) die("unexpected argument: " + a);
            String name = a.substring(2), value;
            int eq = name.indexOf('=');
            if (eq >= 0) { value = name.substring(eq + 1); name = name.substring(0, eq); }
            else if (i + 1 < argv.length) value = argv[++i];
            else { die("missing value for --" + name); return; }
            if (name.equals("conf")) { confs.add(value); continue; }
            if (!Arrays.asList(NAMES).contains(name)) die("unknown option --" + name);
            opt.put(name, value);
        }
        for (String req : new String[] {"bootstrap", "output", "checkpoint"})
            if (!opt.containsKey(req)) die("missing --" + req);
        if (opt.containsKey("input") == opt.containsKey("input-path")) die("give one of --input and --input-path");
        if (opt.containsKey("max-files-per-trigger") && !opt.containsKey("input-path"))
            die("--max-files-per-trigger needs --input-path");
        long triggerMs = Long.parseLong(opt.getOrDefault("trigger-ms", "1000"));
        String triggerKind = opt.getOrDefault("trigger", "processing-time");
        if (!triggerKind.equals("processing-time") && !triggerKind.equals("available-now"))
            die("--trigger must be processing-time or available-now, not " + triggerKind);
        boolean availableNow = triggerKind.equals("available-now");
        long sizeMs = Long.parseLong(opt.getOrDefault("window-size-ms", "0"));
        long slideMs = Long.parseLong(opt.getOrDefault("window-slide-ms", Long.toString(sizeMs)));
        Long delayMs = opt.containsKey("watermark-delay-ms") ? Long.valueOf(opt.get("watermark-delay-ms")) : null;
        boolean windowed = sizeMs > 0;
        String outputMode = opt.getOrDefault("output-mode", windowed ? "append" : "update");
        if (!Arrays.asList("update", "append", "complete").contains(outputMode))
            die("--output-mode is update, append or complete, not " + outputMode);
        if (sizeMs < 0) die("--window-size-ms must not be negative");
        if (!windowed && (opt.containsKey("window-slide-ms") || delayMs != null))
            die("--window-slide-ms and --watermark-delay-ms need --window-size-ms");
        if (windowed && (slideMs <= 0 || slideMs > sizeMs))
            die("--window-slide-ms must be in 1..--window-size-ms");
        if (delayMs != null && delayMs < 0) die("--watermark-delay-ms must not be negative");
        if (windowed && opt.containsKey("input-path"))
            die("--window-size-ms needs --input: the event time is the Kafka record timestamp; files have none");

        SparkSession.Builder b = SparkSession.builder()
            .appName("tally-peer-spark-wordcount")
            .master(opt.getOrDefault("master", "local[2]"))
            .config("spark.sql.shuffle.partitions", opt.getOrDefault("shuffle-partitions", "4"))
            .config("spark.ui.enabled", "false")
            // Timestamps in the windowed JSON are printed in the session time zone: UTC gives "...Z" as tally.
            .config("spark.sql.session.timeZone", "UTC");
        Map<String, String> kafkaOpts = new LinkedHashMap<>();
        for (String c : confs) {
            int eq = c.indexOf('=');
            if (eq <= 0) die("--conf wants key=value, not " + c);
            String k = c.substring(0, eq), v = c.substring(eq + 1);
            if (k.startsWith("kafka.")) kafkaOpts.put(k, v);
            else b.config(k, v);
        }
        SparkSession spark = b.getOrCreate();
        spark.sparkContext().setLogLevel("WARN");

        // source: a column "value", the line (a string from the file source, bytes from Kafka); the windowed
        // variant also needs Kafka's "timestamp".
        Dataset<Row> source;
        if (opt.containsKey("input-path")) {
            // One row per line (\n, \r\n or \r ends a line), column "value"; every file of the directory whose
            // name does not start with "." or "_"; all new files in one batch unless --max-files-per-trigger.
            DataStreamReader r = spark.readStream();
            if (opt.containsKey("max-files-per-trigger"))
                r = r.option("maxFilesPerTrigger", opt.get("max-files-per-trigger"));
            source = r.text(opt.get("input-path"));
        } else {
            source = spark.readStream()
                .format("kafka")
                .option("kafka.bootstrap.servers", opt.get("bootstrap"))
                .option("subscribe", opt.get("input"))
                .option("startingOffsets", "earliest")
                .options(kafkaOpts)
                .load();
        }
        Dataset<Row> output = windowed ? windowedCounts(source, sizeMs, slideMs, delayMs) : seedCounts(source);

        StreamingQuery query = output
            .writeStream()
            .format("kafka")
            .option("kafka.bootstrap.servers", opt.get("bootstrap"))
            .option("topic", opt.get("output"))
            .options(kafkaOpts)
            .option("checkpointLocation", opt.get("checkpoint"))
            .outputMode(outputMode)
            .trigger(availableNow ? Trigger.AvailableNow() : Trigger.ProcessingTime(triggerMs))
            .start();
        try {
            query.awaitTermination();
        } catch (StreamingQueryException e) {
            System.err.println("SparkWordCount: the query failed: " + e.getMessage());
            spark.stop();
            System.exit(1);
        }
        // Only with available-now: the query stopped by itself once everything was written.
        spark.stop();
        System.exit(0);
    }

    /** The seed job: (key, value) = (word, {"word":..,"count":..}). Kafka or file source. */
    private static Dataset<Row> seedCounts(Dataset<Row> source) {
        Dataset<Row> lines = source.selectExpr("CAST(value AS STRING) AS line");

        // As in the seed: split on a single space (split() takes a regex; " " is one literal space).
        // Deviation from the seed: drop the empty strings that empty lines, leading/trailing spaces and runs of
        // spaces produce, so they are not counted as an empty word (tally and Kafka Streams drop them too).
        Dataset<Row> words = lines
            .select(explode(split(col("line"), " ")).alias("word"))
            .filter(col("word").notEqual(""));

        Dataset<Row> counts = words.groupBy("word").count();

        return counts.select(to_json(struct(col("word"), col("count"))).alias("value"), col("word").alias("key"));
    }

    /** The windowed variant: (key, value) = ("<window start ms> <word>", {"window":{..},"word":..,"count":..}). */
    private static Dataset<Row> windowedCounts(Dataset<Row> source, long sizeMs, long slideMs, Long delayMs) {
        // timestamp: the Kafka record's timestamp (CreateTime as tally-gen stamps it), a TimestampType.
        Dataset<Row> lines = source.selectExpr("CAST(value AS STRING) AS line", "timestamp");
        // The watermark sees every record, also one with no word (it comes before the explode).
        if (delayMs != null) lines = lines.withWatermark("timestamp", delayMs + " milliseconds");
        // Split and drop "" as the seed job does.
        Dataset<Row> words = lines
            .select(explode(split(col("line"), " ")).alias("word"), col("timestamp"))
            .filter(col("word").notEqual(""));

        Dataset<Row> counts = words
            .groupBy(window(col("timestamp"), sizeMs + " milliseconds", slideMs + " milliseconds"), col("word"))
            .count();

        return counts.select(
            to_json(struct(col("window"), col("word"), col("count"))).alias("value"),
            concat(expr("CAST(unix_millis(window.start) AS STRING)"), lit(" "), col("word")).alias("key"));
    }

    private static void die(String msg) {
        System.err.println("SparkWordCount: " + msg);
        System.err.println(USAGE);
        System.exit(2);
    }
}
