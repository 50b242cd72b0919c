-- wrk script: POST one AdmissionReview to /validate on every request.
--   REVIEW=review.json wrk -t2 -c16 -d10s --latency -s validate.lua https://127.0.0.1:18443/validate
local path = os.getenv("REVIEW") or error("set REVIEW to an AdmissionReview JSON file")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
