// SPDX-License-Identifier: MIT
// Kafka Streams peer for tally's benchmark: the classic Kafka Streams WordCountDemo topology.
//
//   stream(input) -> flatMapValues(split on "\\s+", drop empty strings) -> groupBy(word) -> count()
//     -> toStream() -> map(word, {"word":"<word>","count":<n>}) -> to(output)
//
// Options (each also readable as a system property of the same name, e.g. -Dbootstrap=...):
//   --bootstrap B  --input T  --output O  --app-id ID  [--guarantee exactly_once_v2|at_least_once]
//   [--commit-interval-ms N]  [--state-dir D]  [--threads N]  [--prop key=value]...
// Prints nothing per record; logs at WARN (slf4j-simple, stderr). Runs until killed; SIGTERM closes
// the Streams client cleanly (commits, flushes, closes its producers and state stores).
package tally.peers;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;

public final class WordCount {
    private static final String USAGE = String.join("\n",
        "usage: WordCount --bootstrap B --input T --output O --app-id ID",
        "                 [--guarantee exactly_once_v2|at_least_once] [--commit-interval-ms N]",
        "                 [--state-dir D] [--threads N] [--prop key=value]...",
        "  --guarantee           processing.guarantee (default exactly_once_v2)",
        "  --commit-interval-ms  commit.interval.ms (default: Kafka Streams' own, 100 for EOS, 30000 otherwise)",
        "  --state-dir           state.dir (default: Kafka Streams' own, <tmp>/kafka-streams)",
        "  --threads             num.stream.threads (default 2)",
        "  --prop key=value      any further Streams/client property (repeatable)",
        "Every option can also be given as a system property of the same name (-Dbootstrap=...).");

    private static final String[] NAMES = {
        "bootstrap", "input", "output", "app-id", "guarantee", "commit-interval-ms", "state-dir", "threads"};

    private static volatile boolean stopping = false;

    public static void main(String[] argv) throws Exception {
        Map<String, String> opt = new LinkedHashMap<>();
        List<String> props = new ArrayList<>();
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
            if (name.equals("prop")) { props.add(value); continue; }
            if (!Arrays.asList(NAMES).contains(name)) die("unknown option --" + name);
            opt.put(name, value);
        }
        for (String req : new String[] {"bootstrap", "input", "output", "app-id"})
            if (!opt.containsKey(req)) die("missing --" + req);

        String guarantee = opt.getOrDefault("guarantee", StreamsConfig.EXACTLY_ONCE_V2);
        if (!guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2) && !guarantee.equals(StreamsConfig.AT_LEAST_ONCE))
            die("--guarantee must be exactly_once_v2 or at_least_once, not " + guarantee);

        Properties cfg = new Properties();
        cfg.put(StreamsConfig.APPLICATION_ID_CONFIG, opt.get("app-id"));
        cfg.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, opt.get("bootstrap"));
        cfg.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        cfg.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(opt.getOrDefault("threads", "2")));
        // Unset = Kafka Streams' default, which is 100 ms under exactly_once_v2 and 30 s under at_least_once.
        if (opt.containsKey("commit-interval-ms"))
            cfg.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(opt.get("commit-interval-ms")));
        if (opt.containsKey("state-dir")) cfg.put(StreamsConfig.STATE_DIR_CONFIG, opt.get("state-dir"));
        cfg.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass());
        cfg.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass());
        // Read the input from its beginning when the application has no committed offsets (Streams' default too).
        cfg.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        for (String p : props) {
            int eq = p.indexOf('=');
            if (eq <= 0) die("--prop wants key=value, not " + p);
            cfg.put(p.substring(0, eq), p.substring(eq + 1));
        }

        Topology topology = topology(opt.get("input"), opt.get("output"));
        KafkaStreams streams = new KafkaStreams(topology, cfg);
        CountDownLatch done = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) done.countDown();
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("WordCount: stream thread failed: " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            boolean closed = streams.close(Duration.ofSeconds(60));
            System.err.println(closed ? "WordCount: closed cleanly" : "WordCount: close timed out after 60 s");
            done.countDown();
        }, "wordcount-shutdown"));

        streams.start();
        done.await();
        if (!stopping) {   // the client died on its own (fatal error): report it through the exit status
            streams.close(Duration.ofSeconds(30));
            System.err.println("WordCount: Kafka Streams stopped in state " + streams.state());
            System.exit(1);
        }
    }

    static Topology topology(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> lines = builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        lines.flatMapValues(WordCount::words)
             .groupBy((key, word) -> word, Grouped.with(Serdes.String(), Serdes.String()))
             .count()
             .toStream()
             .map((word, count) -> KeyValue.pair(word, json(word, count)))
             .to(output, Produced.with(Serdes.String(), Serdes.String()));
        return builder.build();
    }

    /** Splits a line on runs of whitespace ("\\s+"), dropping the empty strings that leading whitespace,
     *  empty lines and null values (tombstones) would give. */
    static List<String> words(String line) {
        List<String> out = new ArrayList<>();
        if (line == null) return out;
        for (String w : line.split("\\s+"))
            if (!w.isEmpty()) out.add(w);
        return out;
    }

    /** {"word":"<word>","count":<n>} with the word escaped as a JSON string (", \ and control characters). */
    static String json(String word, Long count) {
        StringBuilder sb = new StringBuilder(word.length() + 32);
        sb.append("{\"word\":\"");
        escape(word, sb);
        sb.append("\",\"count\":").append(count == null ? 0L : count.longValue()).append('}');
        return sb.toString();
    }

    static void escape(String s, StringBuilder sb) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20) sb.append(String.format("\\u%04X", (int) c));
                    else sb.append(c);
            }
        }
    }

    private static void die(String msg) {
        System.err.println("WordCount: " + msg);
        System.err.println(USAGE);
        System.exit(2);
    }
}
