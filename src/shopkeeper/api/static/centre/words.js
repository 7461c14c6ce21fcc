/* Words for the preference centre: labels, values, ages and reasons as a person reads them. */

export const SOURCES = [
  ["stated", "You told us"],
  ["observed", "We saw"],
  ["inferred", "We guessed"],
];

export const LABELS = {
  language: "Language",
  size: "Size",
  sizes: "Sizes",
  favourite_categories: "Categories you like",
  disliked_categories: "Categories you don't want to see",
  favourite_colours: "Colours you like",
  disliked_colours: "Colours you don't want to see",
  favourite_brands: "Brands you like",
  disliked_brands: "Brands you don't want to see",
  favourite_sizes: "Sizes you buy",
  preferred_channels: "How you like to hear from us",
  contact_frequency: "How often we may contact you",
  pause_until: "Messages paused until",
  answers: "What you told us about you",
  about_you: "About you",
  first_seen: "Your first visit",
  last_seen: "Your latest visit",
  order_count: "Orders",
  revenue: "Spent in total",
  average_order_value: "Average order",
  return_count: "Returns",
  currency: "Currency",
  last_viewed_items: "Products you looked at recently",
  last_carted_items: "Products in your basket recently",
  country: "Country",
  persona: "The kind of customer we think you are",
  email: "Email address",
  phone: "Phone number",
  name: "Name",
  first_name: "First name",
  last_name: "Last name",
  shirts: "Shirts and tops",
  trousers: "Trousers",
  shoes: "Shoes",
};

export const CHANNELS = {
  email: "email",
  sms: "text message",
  post: "post",
  phone: "phone call",
  push: "app notification",
  web: "on the website",
  staff: "a person from the shop",
};

export const FREQUENCIES = {
  as_it_happens: "whenever there is news for you",
  daily: "at most once a day",
  weekly: "at most once a week",
  monthly: "at most once a month",
  quarterly: "at most once every three months",
  never: "never",
};

export const PURPOSES = {
  necessary: [
    "Running the shop",
    "Your orders, your account and keeping the shop secure. Always on: the shop cannot work without it.",
  ],
  analytics: ["Measuring how the shop is used", "Counting visits and clicks so we can improve the shop."],
  personalization: [
    "Personalising what we show you",
    "Using what you told us and what we saw to choose products for you.",
  ],
  email_marketing: ["Marketing emails", "News and offers by email."],
  staff_outreach: [
    "Staff getting in touch",
    "A person from the shop may contact you, for example about something you bought.",
  ],
};
export const PURPOSE_ORDER = Object.keys(PURPOSES);

export const CONSENT_CHANNELS = {
  preference_centre: "on this page",
  api: "recorded by the shop",
  cli: "recorded by the shop",
  event: "on the shop's website",
};

export function humanize(key) {
  if (LABELS[key]) return LABELS[key];
  const words = String(key).replace(/[._-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function languageName(code) {
  try {
    const name = new Intl.DisplayNames(["en"], { type: "language" }).of(code);
    if (name && name !== code) return name;
  } catch (_) {
    /* not a language code: show it as it is */
  }
  return code;
}

export function formatDate(iso) {
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(iso) ? iso + "T00:00:00" : iso);
  if (isNaN(date.getTime())) return iso;
  return date.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
}

export function formatDateTime(iso) {
  const date = new Date(iso);
  if (isNaN(date.getTime())) return iso;
  return date.toLocaleString("en-GB", {
    day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

export function words(key, value) {
  if (value === null || value === undefined || value === "") return "not set";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.map((v) => words(key, v)).join(", ") : "none";
  if (typeof value === "object") {
    const parts = Object.entries(value).map(([k, v]) => humanize(k) + ": " + words(k, v));
    return parts.length ? parts.join("; ") : "none";
  }
  if (typeof value === "number") {
    return value.toLocaleString("en-GB", { maximumFractionDigits: 2 });
  }
  const text = String(value);
  if (key === "language") return languageName(text);
  if (key === "preferred_channels" && CHANNELS[text]) return CHANNELS[text];
  if (key === "contact_frequency" && FREQUENCIES[text]) return FREQUENCIES[text];
  if (/^\d{4}-\d{2}-\d{2}([T ].*)?$/.test(text)) return formatDate(text);
  return text;
}

export function ago(days) {
  if (typeof days !== "number" || isNaN(days)) return "";
  if (days < 1) return "today";
  if (days < 2) return "yesterday";
  if (days < 31) return Math.floor(days) + " days ago";
  const months = Math.round(days / 30.44);
  if (months < 12) return months <= 1 ? "a month ago" : months + " months ago";
  const years = Math.round(days / 365.25);
  return years <= 1 ? "a year ago" : years + " years ago";
}

export function evidenceWords(trait) {
  const parts = [];
  const evidence = trait.evidence || {};
  if (trait.source === "stated") return parts; // what a person told us needs no count of events
  if (typeof evidence.count === "number" && evidence.count > 0) {
    parts.push("from " + evidence.count + (evidence.count === 1 ? " thing you did" : " things you did"));
  }
  if (evidence.model) parts.push("by our model " + evidence.model);
  if (typeof trait.confidence === "number") parts.push(Math.round(trait.confidence * 100) + "% sure");
  return parts;
}

const SOURCE_PHRASES = { stated: "what you told us", observed: "what we saw", inferred: "what we guessed" };
const WHY_DEFAULT = {
  stated: "you told us, and what you tell us always comes first.",
  observed: "we saw it in what you did in the shop.",
  inferred: "we guessed it from what you did. Tell us if it is wrong.",
};

/** Why this value won, in words: its source, and the weaker or older values it beat. */
export function whyWords(trait) {
  const considered = Array.isArray(trait.overridden) ? trait.overridden : [];
  const beaten = considered.filter((c) => c.status === "outranked");
  const expired = considered.filter((c) => c.status === "expired");
  let text = WHY_DEFAULT[trait.source] || trait.why || "";
  if (beaten.length) {
    const others = beaten.map(
      (c) => (SOURCE_PHRASES[c.source] || c.source) + " (" + words(trait.key, c.value) + ")");
    text = (SOURCE_PHRASES[trait.source] || "this") + " comes before " + others.join(" and ") + ".";
  }
  if (expired.length) {
    text += expired.length === 1
      ? " An older value has expired."
      : " " + expired.length + " older values have expired.";
  }
  return text ? "Why: " + text : "";
}
