// Search hits: one player for the page; a hit's button plays its call from the hit's moment.
const player = document.getElementById("hit-player");
let current = null;

function play(button) {
  const start = Number(button.dataset.start);
  const go = () => { player.currentTime = start; player.play().catch(() => {}); };
  if (current) current.closest(".hit").classList.remove("playing");
  current = button;
  button.closest(".hit").classList.add("playing");
  const src = new URL(button.dataset.src, location.href).href;
  if (player.src !== src) {
    player.src = src;
    player.addEventListener("loadedmetadata", go, { once: true });
  } else if (player.readyState >= 1) go();
  else player.addEventListener("loadedmetadata", go, { once: true });
}

for (const button of document.querySelectorAll(".play-hit")) {
  button.addEventListener("click", () => play(button));
}
