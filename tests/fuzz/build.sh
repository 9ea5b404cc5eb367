#!/bin/sh
# Builds one libFuzzer target: tests/fuzz/build.sh <name> compiles
# tests/fuzz/fuzz_<name>.c with the sources it needs into build-fuzz/fuzz_<name>
# and prints the binary's path. Run it for example as
#   $(tests/fuzz/build.sh http_parser) -max_total_time=300 tests/fuzz/corpus/http_parser
set -eu
cd "$(dirname "$0")/../.."

name=${1:?usage: tests/fuzz/build.sh <target> (e.g. http_parser)}

# Sources each target needs besides its own file.
case "$name" in
http_parser) extra="src/http_parser.c src/chunked.c src/host.c" ;;
path_norm) extra="src/path_norm.c" ;;
traceparent) extra="src/trace_context.c" ;;
admin_guard)
    extra="src/admin_guard.c"
    libs="-lcrypto"
    ;;
# Connection/Upgrade/X-Forwarded-For lists, the client-field filter, the client address
fields) extra="src/field_list.c src/client_fields.c src/client_addr.c src/cidr.c src/http_parser.c src/host.c src/text.c" ;;
shape)
    # fuzz_shape.c #includes tests/unit/shape_dom_oracle.c (the differential oracle)
    extra="plugins/response-shape/shape.c"
    FUZZ_CFLAGS="-Itests/unit ${FUZZ_CFLAGS:-}"
    libs="-ljansson"
    ;;
jwt)
    extra="plugins/jwt/jwt_keys.c plugins/jwt/jwt_verify.c plugins/jwt/jwt_claims.c plugins/jwt/jwt_cache.c"
    libs="-lcrypto -ljansson"
    ;;
h2)
    # the HTTP/2 session and request validation over libnghttp2; the metrics
    # registry is stubbed in fuzz_h2.c
    extra="src/h2_session.c src/h2_request.c src/http_parser.c src/host.c src/text.c src/clock.c"
    libs="-lnghttp2 -levent"
    ;;
jwt_source)
    extra="plugins/jwt/jwt_source.c src/query.c src/percent.c"
    ;;
*)
    echo "build.sh: unknown fuzz target '$name' (add it to the case statement)" >&2
    exit 2
    ;;
esac

src="tests/fuzz/fuzz_$name.c"
[ -f "$src" ] || { echo "build.sh: $src not found" >&2; exit 2; }
out=build-fuzz/fuzz_$name
mkdir -p build-fuzz
# shellcheck disable=SC2086 # $extra is a list of file names
${CC:-clang} -std=c11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I. -Iinclude -Isrc ${FUZZ_CFLAGS:-} "$src" $extra ${libs:-} -o "$out"
echo "$PWD/$out"
