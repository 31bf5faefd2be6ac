// dnswarden console: the login form, logout, and the attempts chart.
// Served from the daemon itself; the page allows no inline script.
"use strict";

function csrfToken() {
	const m = document.querySelector('meta[name="csrf-token"]');
	return m ? m.content : "";
}

function setupLogin() {
	const form = document.getElementById("login");
	if (!form)
		return;
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const err = document.getElementById("login-error");
		err.textContent = "";
		const body = JSON.stringify({
			user: document.getElementById("user").value,
			password: document.getElementById("password").value,
		});
		const res = await fetch("/api/v1/login", {
			method: "POST", body: body, credentials: "same-origin",
			headers: { "Content-Type": "application/json" },
		});
		if (res.ok) {
			location.assign("/");
			return;
		}
		let msg = "login failed";
		try {
			msg = (await res.json()).error;
		} catch (e) { /* keep the default */ }
		err.textContent = msg;	// text, never HTML
	});
}

function setupLogout() {
	const b = document.getElementById("logout");
	if (!b)
		return;
	b.addEventListener("click", async () => {
		await fetch("/api/v1/logout", {
			method: "POST", credentials: "same-origin",
			headers: { "X-CSRF-Token": csrfToken() },
		});
		location.assign("/");
	});
}

function setupChart() {
	const c = document.getElementById("chart");
	if (!c || typeof Chart === "undefined")
		return;
	const labels = JSON.parse(c.dataset.labels || "[]");
	const values = JSON.parse(c.dataset.values || "[]");
	new Chart(c, {
		type: "bar",
		data: {
			labels: labels,
			datasets: [{ label: "attempts", data: values,
			    backgroundColor: "#b03a2e" }],
		},
		options: {
			animation: false,
			maintainAspectRatio: false,
			scales: { y: { beginAtZero: true,
			    ticks: { precision: 0 } } },
			plugins: { legend: { display: false } },
		},
	});
}

document.addEventListener("DOMContentLoaded", () => {
	setupLogin();
	setupLogout();
	setupChart();
});
