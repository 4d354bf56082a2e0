// Camera snapshot for the enrol form: the browser's camera (getUserMedia; browsers allow it
// on https:// and on localhost) into a still JPEG added to the form's photos, so a person
// can be enrolled at the desk without a photo file.
(function () {
  const start = document.getElementById("camera-start");
  const snap = document.getElementById("camera-snap");
  const video = document.getElementById("camera-video");
  const still = document.getElementById("camera-still");
  const photos = document.getElementById("photos");
  const status = document.getElementById("camera-status");
  if (!start) return;
  start.addEventListener("click", async function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status.textContent = "no camera here (the page needs https:// or localhost)";
      return;
    }
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
      await video.play();
      snap.disabled = false;
      status.textContent = "camera on";
    } catch (err) {
      status.textContent = "camera refused: " + err.name;
    }
  });
  snap.addEventListener("click", function () {
    still.width = video.videoWidth;
    still.height = video.videoHeight;
    still.getContext("2d").drawImage(video, 0, 0);
    still.classList.add("taken");
    still.toBlob(function (blob) {
      const files = new DataTransfer();
      for (const f of photos.files) files.items.add(f);
      files.items.add(new File([blob], "camera-" + Date.now() + ".jpg", { type: "image/jpeg" }));
      photos.files = files.files;
      status.textContent = photos.files.length + " photo(s) ready";
    }, "image/jpeg", 0.92);
  });
})();
