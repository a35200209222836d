"""Apache Kafka itself, for tests, `make kafka` and chaos runs: the broker's jars from Maven
Central (pom.xml, classpath.py), TLS material made on the spot (tls.py), and a single-node KRaft
broker with PLAINTEXT, SASL, TLS and mutual-TLS listeners (broker.py)."""
