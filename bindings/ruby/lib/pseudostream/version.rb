# frozen_string_literal: true

module Pseudostream
  # The binding's version; the library's is Pseudostream.library_version.
  VERSION = "0.1.0"
end
