// Sends messages to a shopkeeper server with Segment's Node SDK (@segment/analytics-node), as a shop's
// backend would: identify, track and alias one call per request, then four calls queued into one batch.
// Usage: node send_with_analytics_node.js URL WRITE_KEY RUN (with NODE_PATH at the SDK's node_modules).
// Prints {"single": [messageIds], "batch": [messageIds], "errors": [...]} and exits 1 on any error.
"use strict";
const { Analytics } = require("@segment/analytics-node");

const [host, writeKey, run] = process.argv.slice(2);
const user = `node-user-${run}`;
const browser = `node-anon-${run}`;
const phone = `node-phone-${run}`;
const errors = [];

function client(flushAt) {
  const analytics = new Analytics({ writeKey, host, flushAt, flushInterval: 60000, maxRetries: 1 });
  analytics.on("error", (error) => errors.push(String(error && (error.reason || error.code || error))));
  return analytics;
}

// One call, resolved when the SDK has delivered it (or given up).
function send(analytics, method, params) {
  return new Promise((resolve) => {
    analytics[method](params, (error) => {
      if (error) errors.push(`${method}: ${error.reason || error}`);
      resolve(params.messageId);
    });
  });
}

async function main() {
  const single = client(1);
  const sent = [];
  sent.push(await send(single, "identify", {
    userId: user, anonymousId: browser, traits: { email: `Node.${run}@Example.com`, plan: "gold" },
    messageId: `node-${run}-identify`,
  }));
  sent.push(await send(single, "track", {
    anonymousId: phone, event: "Product Added", properties: { sku: "71053", price: 3.75 },
    messageId: `node-${run}-track`,
  }));
  sent.push(await send(single, "alias", { previousId: phone, userId: user, messageId: `node-${run}-alias` }));
  await single.closeAndFlush({ timeout: 10000 });

  // Four calls queued, sent together as one /v1/batch request on close.
  const batching = client(100);
  const batch = [
    ["page", { userId: user, name: "Home", properties: { path: "/" } }],
    ["track", { userId: user, event: "Product Viewed", properties: { sku: "22423" } }],
    ["track", { userId: user, event: "Order Completed", properties: { order_id: `o-${run}`, revenue: 12.75 } }],
    ["group", { userId: user, groupId: `household-${run}`, traits: { name: "The Hoppers" } }],
  ].map(([method, params], n) => {
    params.messageId = `node-${run}-batch-${n}`;
    batching[method](params);
    return params.messageId;
  });
  await batching.closeAndFlush({ timeout: 10000 });

  process.stdout.write(JSON.stringify({ single: sent, batch, errors }) + "\n");
  process.exit(errors.length ? 1 : 0);
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ single: [], batch: [], errors: [String(error)] }) + "\n");
  process.exit(1);
});
