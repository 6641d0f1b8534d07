// Reads {"secret", "headers", "body"} objects, one JSON array on stdin, and
// prints one line per object: "ok" or the verifier's error. The Standard
// Webhooks reference library is the judge of ytcaption's signatures.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
for (const c of JSON.parse(input)) {
  try {
    new Webhook(c.secret).verify(c.body, c.headers);
    console.log("ok");
  } catch (e) {
    console.log("refused: " + e.message);
  }
}
