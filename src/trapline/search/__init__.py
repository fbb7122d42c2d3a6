"""What an issue search can rule out or take wholesale without reading events: per
fingerprint, a Bloom filter of the trigrams of every search text its events had, and the text
parts that every one of its events had."""
