-- wrk script: POST the multipart body in $BENCH_BODY with the Content-Type in $BENCH_CONTENT_TYPE.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
