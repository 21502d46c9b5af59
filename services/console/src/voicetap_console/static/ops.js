// /ops refreshes itself every few seconds while visible.
const body = document.getElementById("ops-body");

async function refresh() {
  if (document.hidden) return;
  try {
    const response = await fetch("/ops?fragment=1");
    body.innerHTML = await response.text(); // rendered (and escaped) by the server
  } catch {
    // the next refresh tries again
  }
}

setInterval(refresh, 5000);
