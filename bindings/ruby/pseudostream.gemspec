# frozen_string_literal: true

require_relative "lib/pseudostream/version"

Gem::Specification.new do |spec|
  spec.name = "pseudostream"
  spec.version = Pseudostream::VERSION
  spec.summary = "HTTP pseudostreaming of FLV and MP4 video for Rack, over libpseudostream's C ABI"
  spec.description = <<~TEXT
    Ruby bindings (ffi gem) for libpseudostream: keyframe seeks by time or
    byte (movie.flv?start=..., movie.mp4?start=...&end=...), Range,
    validators, CORS and paced streaming, all decided by the library, plus a
    Rack application that serves a directory of FLV and MP4 files. Needs
    libpseudostream.so (PSEUDOSTREAM_LIB, or on the dynamic loader's path).
  TEXT
  spec.license = "MIT OR Apache-2.0"
  spec.authors = ["libpseudostream developers"]
  spec.required_ruby_version = ">= 2.7"
  spec.files = Dir["lib/**/*.rb"] + %w[config.ru README.md]
  spec.require_paths = ["lib"]
  spec.add_dependency "ffi", ">= 1.15"
  spec.add_dependency "rack", ">= 2.2"
end
