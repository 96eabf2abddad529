// SPDX-License-Identifier: MIT
// Helpers for checking the peers end to end on a real broker (used by bench/peers/check):
//
//   PeerTools topic   --bootstrap B --topic T --partitions P
//   PeerTools produce --bootstrap B --topic T --lines N [--vocab V] [--seed S]
//   PeerTools verify  --bootstrap B --input T --output O [--split space|whitespace]
//                     [--isolation read_committed|read_uncommitted] [--timeout-s S] [--settle-ms M] [--t0-ms EPOCH_MS]
//
// verify computes the true counts from the input topic itself (split on single spaces like the Spark seed,
// or on "\\s+" like Kafka Streams' WordCountDemo; both drop empty strings), then reads the output topic from
// its beginning and keeps the last {"word":..,"count":n} per word until every word's last count equals its true
// count (and no other word appears), then keeps reading --settle-ms longer to catch any overshoot.
package tally.peers;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class PeerTools {
    public static void main(String[] argv) throws Exception {
        if (argv.length == 0 || argv[0].equals("-h") || argv[0].equals("--help")) {
            System.out.println("usage: PeerTools topic|produce|verify --option value ... (see the source's header)");
            System.exit(argv.length == 0 ? 2 : 0);
        }
        Map<String, String> o = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) fail("bad argument: " + argv[i]);
            o.put(argv[i].substring(2), argv[++i]);
        }
        switch (argv[0]) {
            case "topic": topic(o); break;
            case "produce": produce(o); break;
            case "verify": System.exit(verify(o)); break;
            default: fail("unknown command " + argv[0]);
        }
    }

    static String need(Map<String, String> o, String k) {
        String v = o.get(k);
        if (v == null) fail("missing --" + k);
        return v;
    }

    static void fail(String msg) {
        System.err.println("PeerTools: " + msg);
        System.exit(2);
    }

    // ---- topic ------------------------------------------------------------------------------------------------

    static void topic(Map<String, String> o) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, need(o, "bootstrap"));
        try (Admin admin = Admin.create(p)) {
            NewTopic t = new NewTopic(need(o, "topic"), Integer.parseInt(need(o, "partitions")), (short) 1);
            try {
                admin.createTopics(List.of(t)).all().get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
        }
    }

    // ---- produce ----------------------------------------------------------------------------------------------

    /** Special words that exercise the JSON escaping and UTF-8 paths of every peer. */
    static final String[] SPECIAL = {"say\"hi\"", "back\\slash", "na\u00efve", "\u65e5\u672c\u8a9e", "ctl\u0001x", "{json:1}"};

    static void produce(Map<String, String> o) throws Exception {
        String topic = need(o, "topic");
        long lines = Long.parseLong(need(o, "lines"));
        int vocab = Integer.parseInt(o.getOrDefault("vocab", "1000"));
        Random rnd = new Random(Long.parseLong(o.getOrDefault("seed", "42")));
        String[] words = new String[vocab + SPECIAL.length];
        for (int i = 0; i < vocab; i++) words[i] = "w" + i;
        System.arraycopy(SPECIAL, 0, words, vocab, SPECIAL.length);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, need(o, "bootstrap"));
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        long nwords = 0;
        long t0 = System.nanoTime();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            StringBuilder sb = new StringBuilder();
            for (long l = 0; l < lines; l++) {
                sb.setLength(0);
                int r = rnd.nextInt(100);
                if (r == 0) {            // 1%: empty line
                } else if (r == 1) {     // 1%: only spaces
                    sb.append("   ");
                } else {
                    int n = 1 + rnd.nextInt(10);
                    if (r == 2) sb.append(' ');                        // leading space
                    for (int i = 0; i < n; i++) {
                        if (i > 0) sb.append(r == 3 ? "  " : " ");     // 1%: double spaces
                        // skewed choice: the low ids are far more common than the high ones, like real text
                        int w = rnd.nextInt(10) < 7 ? rnd.nextInt(Math.min(50, words.length)) : rnd.nextInt(words.length);
                        sb.append(words[w]);
                        nwords++;
                    }
                    if (r == 4) sb.append(' ');                        // trailing space
                }
                producer.send(new ProducerRecord<>(topic, null, sb.toString()), (md, e) -> {
                    if (e != null) { System.err.println("PeerTools: produce failed: " + e); System.exit(1); }
                });
            }
            producer.flush();
        }
        System.out.printf("produce: topic=%s lines=%d words=%d in %.2f s%n", topic, lines, nwords,
            (System.nanoTime() - t0) / 1e9);
    }

    // ---- verify -----------------------------------------------------------------------------------------------

    static KafkaConsumer<String, String> consumer(String bootstrap, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5000");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
        List<PartitionInfo> infos = c.partitionsFor(topic, Duration.ofSeconds(30));
        if (infos == null || infos.isEmpty()) fail("topic " + topic + " not found");
        List<TopicPartition> tps = new ArrayList<>();
        for (PartitionInfo i : infos) tps.add(new TopicPartition(topic, i.partition()));
        return tps;
    }

    static int verify(Map<String, String> o) throws Exception {
        String bootstrap = need(o, "bootstrap");
        String input = need(o, "input"), output = need(o, "output");
        String split = o.getOrDefault("split", "space");
        String isolation = o.getOrDefault("isolation", "read_committed");
        long timeoutMs = (long) (Double.parseDouble(o.getOrDefault("timeout-s", "600")) * 1000);
        long settleMs = Long.parseLong(o.getOrDefault("settle-ms", "3000"));
        long t0 = o.containsKey("t0-ms") ? Long.parseLong(o.get("t0-ms")) : System.currentTimeMillis();

        // 1. The true counts, from the input topic as it stands now.
        Map<String, Long> expected = new HashMap<>();
        long lines = 0, total = 0;
        try (KafkaConsumer<String, String> c = consumer(bootstrap, isolation)) {
            List<TopicPartition> tps = partitions(c, input);
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            while (true) {
                boolean more = false;
                for (TopicPartition tp : tps) if (c.position(tp) < end.get(tp)) more = true;
                if (!more) break;
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    lines++;
                    String v = r.value();
                    if (v == null) continue;
                    for (String w : split.equals("whitespace") ? v.split("\\s+") : v.split(" ", -1)) {
                        if (w.isEmpty()) continue;
                        expected.merge(w, 1L, Long::sum);
                        total++;
                    }
                }
            }
        }
        System.out.printf("verify: input %s: %d lines, %d words, %d distinct%n", input, lines, total, expected.size());

        // 2. The output topic from its beginning, until the last count of every word is its true count.
        Map<String, Long> last = new HashMap<>();
        long matched = 0, extra = 0, records = 0, bad = 0, regress = 0;
        long firstAt = -1, convergedAt = -1;
        try (KafkaConsumer<String, String> c = consumer(bootstrap, isolation)) {
            List<TopicPartition> tps = partitions(c, output);
            c.assign(tps);
            c.seekToBeginning(tps);
            while (true) {
                long now = System.currentTimeMillis();
                if (convergedAt < 0 && now - t0 > timeoutMs) break;
                if (convergedAt >= 0 && now - convergedAt > settleMs) break;
                ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
                if (!rs.isEmpty() && firstAt < 0) firstAt = System.currentTimeMillis();
                for (ConsumerRecord<String, String> r : rs) {
                    records++;
                    Object[] wc = parse(r.value());
                    if (wc == null || !wc[0].equals(r.key())) {
                        if (bad++ < 5) System.out.println("verify: bad record key=" + r.key() + " value=" + r.value());
                        continue;
                    }
                    String w = (String) wc[0];
                    long n = (Long) wc[1];
                    Long prev = last.put(w, n);
                    if (prev != null && n < prev && regress++ < 5)
                        System.out.println("verify: count went down for " + w + ": " + prev + " -> " + n);
                    Long exp = expected.get(w);
                    if (exp == null) { if (prev == null) extra++; continue; }
                    boolean was = prev != null && prev.longValue() == exp.longValue();
                    boolean is = n == exp;
                    if (is && !was) matched++;
                    if (!is && was) matched--;
                }
                boolean ok = matched == expected.size() && extra == 0;
                if (ok && convergedAt < 0) convergedAt = System.currentTimeMillis();
                if (!ok && convergedAt >= 0) {
                    System.out.println("verify: counts moved past their true values after converging");
                    convergedAt = -1;
                    break;
                }
            }
        }
        boolean ok = convergedAt >= 0 && bad == 0 && regress == 0;
        System.out.printf("verify: %s output %s: %d records, %d words seen (%d matching, %d unexpected), "
                + "%d malformed, %d regressions; first output at %.1f s, converged at %s%n",
            ok ? "OK" : "FAIL", output, records, last.size(), matched, extra, bad, regress,
            firstAt < 0 ? -1.0 : (firstAt - t0) / 1000.0,
            convergedAt < 0 ? "never" : String.format("%.1f s", (convergedAt - t0) / 1000.0));
        if (!ok) {
            int shown = 0;
            for (Map.Entry<String, Long> e : expected.entrySet()) {
                Long got = last.get(e.getKey());
                if (got == null || got.longValue() != e.getValue().longValue()) {
                    System.out.println("verify:   " + e.getKey() + " expected " + e.getValue() + " got " + got);
                    if (++shown == 10) break;
                }
            }
        }
        return ok ? 0 : 1;
    }

    /** Parses exactly {"word":"...","count":N} (keys in either order, optional spaces); null when malformed. */
    static Object[] parse(String s) {
        if (s == null) return null;
        try {
            int[] pos = {0};
            String word = null;
            Long count = null;
            skip(s, pos); expect(s, pos, '{');
            for (int k = 0; k < 2; k++) {
                skip(s, pos);
                String key = string(s, pos);
                skip(s, pos); expect(s, pos, ':'); skip(s, pos);
                if (key.equals("word")) word = string(s, pos);
                else if (key.equals("count")) {
                    int b = pos[0];
                    while (pos[0] < s.length() && Character.isDigit(s.charAt(pos[0]))) pos[0]++;
                    count = Long.parseLong(s.substring(b, pos[0]));
                } else return null;
                skip(s, pos);
                if (k == 0) expect(s, pos, ',');
            }
            expect(s, pos, '}');
            skip(s, pos);
            if (pos[0] != s.length() || word == null || count == null) return null;
            return new Object[] {word, count};
        } catch (RuntimeException e) {
            return null;
        }
    }

    static void skip(String s, int[] p) { while (p[0] < s.length() && s.charAt(p[0]) == ' ') p[0]++; }

    static void expect(String s, int[] p, char c) {
        if (p[0] >= s.length() || s.charAt(p[0]) != c) throw new IllegalArgumentException("expected " + c);
        p[0]++;
    }

    static String string(String s, int[] p) {
        expect(s, p, '"');
        StringBuilder sb = new StringBuilder();
        while (true) {
            char c = s.charAt(p[0]++);
            if (c == '"') return sb.toString();
            if (c < 0x20) throw new IllegalArgumentException("raw control character in a JSON string");
            if (c != '\\') { sb.append(c); continue; }
            char e = s.charAt(p[0]++);
            switch (e) {
                case '"': case '\\': case '/': sb.append(e); break;
                case 'b': sb.append('\b'); break;
                case 'f': sb.append('\f'); break;
                case 'n': sb.append('\n'); break;
                case 'r': sb.append('\r'); break;
                case 't': sb.append('\t'); break;
                case 'u': sb.append((char) Integer.parseInt(s.substring(p[0], p[0] + 4), 16)); p[0] += 4; break;
                default: throw new IllegalArgumentException("bad escape");
            }
        }
    }
}
