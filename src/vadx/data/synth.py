"""Synthetic surveillance scenes with exact, pixel-level ground truth (``vadx synth``).

Public anomaly datasets cannot be downloaded here, and none gives where *and* when an anomaly
is, pixel by pixel. These scenes do: every pixel of every frame knows which actor drew it, so
the anomaly mask is exact and explanation maps can be *scored*, not only looked at.

A scene is a textured ground (or frames of a real background video) seen from above at an
angle, people walking across it at varied speeds and directions, static obstacles that occlude
them, and distractors that are **not** the anomaly: other walkers (some running, some in pairs,
some in flame-coloured clothes), a drifting cloud shadow, a blinking lamp, lighting changes and
camera noise. One anomaly per clip, starting at a random frame and place:

* ``fight`` — two people walk towards each other, meet, and from then on move violently
  together (jerking bodies, flailing arms);
* ``fire`` — a flickering, growing flame-coloured region;
* ``shooting`` — a person stops, turns towards the plaza, fires a rifle: bursts of muzzle
  flashes, tracer streaks, gun smoke;
* ``normal`` — no anomaly.

The mask of a frame holds the visible pixels of the anomaly's actors from its first frame on
(occluded parts are excluded); the frame label is 1 from that frame on. Rendering uses no
anti-aliasing so masks and pixels agree exactly before video compression.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

import cv2
import numpy as np

from vadx import limits
from vadx._version import __version__
from vadx.data.masks import write_masks
from vadx.errors import InputError
from vadx.files import read_json, staged_folder, write_json
from vadx.limits import check_range
from vadx.video.encode import write_mp4, write_png

SYNTH_CLASSES = ("fight", "shooting", "fire", "normal")
SPLITS = ("train", "val", "test")
#: scene families: ``default`` draws every clip's scene on its own; in ``controlled`` the clips
#: of the four classes with the same split and number share one scene, so that only the anomaly
#: tells the classes apart (:func:`scene_seed`)
FAMILIES = ("default", "controlled")
#: actor ids at or above this value belong to the anomaly
ANOMALY_ID = 1000
#: owner ids of the other actors in the id buffer (0 is the ground; walkers are 1…99)
OBSTACLE_ID, LAMP_ID, SHADOW_ID = 100, 200, 300
#: the name that stands for all of the anomaly's actors in :class:`Intervention`
ANOMALY = "anomaly"


@dataclass(frozen=True)
class SynthConfig:
    """What ``vadx synth`` generates.

    Attributes:
        clips: clips per class in the train, val and test splits.
        num_frames: frames per clip.
        size: frame ``(height, width)``.
        fps: frame rate of the written videos.
        seed: everything is a function of this seed (and the clip's class, split and number).
        background: optional real video whose frames replace the textured ground.
        classes: which classes to generate (a subset of fight, shooting, fire, normal).
        family: ``default``, or ``controlled``: the evidence-controlled family, where clip
            ``n`` of every class in a split shares its whole scene (ground, walkers, obstacles,
            distractors, light, noise) and only the anomaly differs (:func:`scene_seed`).
    """

    clips: tuple[int, int, int] = (40, 10, 10)
    num_frames: int = 40
    size: tuple[int, int] = (112, 112)
    fps: float = 10.0
    seed: int = 0
    background: str | None = None
    classes: tuple[str, ...] = SYNTH_CLASSES
    family: str = "default"

    def __post_init__(self) -> None:
        if len(self.clips) != 3 or min(self.clips) < 0 or sum(self.clips) == 0:
            raise InputError(f"clips must be three counts (train, val, test), got {self.clips}")
        check_range("num_frames", self.num_frames, limits.SYNTH_FRAMES, InputError, integer=True)
        for side in self.size:
            check_range("size", side, limits.SYNTH_SIDE, InputError, integer=True)
        check_range("fps", self.fps, limits.FPS, InputError)
        check_range("seed", self.seed, limits.SEED, InputError, integer=True)
        if len(set(self.classes)) != len(self.classes):
            raise InputError(f"classes must not repeat, got {self.classes}")
        if self.family not in FAMILIES:
            raise InputError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        unknown = set(self.classes) - set(SYNTH_CLASSES)
        if unknown or not self.classes:
            raise InputError(
                f"classes must be among {', '.join(SYNTH_CLASSES)}, got {self.classes}"
            )


@dataclass
class SynthClip:
    """One rendered clip: frames uint8 ``(T, H, W, 3)``, masks bool ``(T, H, W)``, labels.

    ``ids`` ``(T, H, W)`` says which actor each pixel shows (its owner id; 0 is the ground;
    where the cloud shadow darkens bare ground, the shadow's), and ``actors`` names every actor
    of the scene with its owner ids: ``walker-N``, ``runner``, ``pair-1``/``pair-2`` (two
    friends walking together), ``obstacle-N``, ``lamp``, ``shadow``, and the anomaly's own:
    ``fighter-1``/``fighter-2``, ``shooter`` or ``fire``. These are the names
    :class:`Intervention` removes.
    """

    kind: str
    frames: np.ndarray
    masks: np.ndarray
    frame_labels: np.ndarray
    start: int | None
    details: dict = field(default_factory=dict)
    ids: np.ndarray | None = None
    actors: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def anomaly_actors(self) -> tuple[str, ...]:
        """The names of the anomaly's actors (none in a normal clip)."""
        return tuple(n for n, owners in self.actors.items() if min(owners) >= ANOMALY_ID)

    def actor_masks(self, name: str) -> np.ndarray:
        """Where actor ``name`` is visible, bool ``(T, H, W)``."""
        if self.ids is None or name not in self.actors:
            raise InputError(f"no actor {name!r} in this clip; it has {', '.join(self.actors)}")
        return np.isin(self.ids, self.actors[name])


@dataclass(frozen=True)
class Intervention:
    """What to change when a scene is drawn again (:meth:`SceneSpec.render`): the ground truth
    of explanations *for a model* comes from such counterfactual clips.

    Every part of a scene draws from its own random stream, and an actor that is removed still
    moves (and still draws its random numbers) where nobody sees it, so everything else in the
    clip stays exactly as it was; ``Intervention()`` changes nothing.

    Attributes:
        remove: actor names (:attr:`SynthClip.actors`) not drawn: their pixels show what is
            behind them; ``"anomaly"`` stands for all of the anomaly's actors.
        frames: ``(first, stop)``: remove them in these frames only (source frames, ``stop``
            excluded); every other frame equals the original's. None: in every frame.
        context_seed: when set, everything but the anomaly — ground, walkers, obstacles,
            distractors, light, noise — is drawn anew from this seed (the same distribution,
            another draw); the anomaly stays as it was.
        shift: frames by which the anomaly's start moves (kept inside the clip).
    """

    remove: frozenset[str] = frozenset()
    frames: tuple[int, int] | None = None
    context_seed: int | tuple[int, ...] | None = None
    shift: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "remove", frozenset(self.remove))
        if self.frames is not None and not 0 <= self.frames[0] <= self.frames[1]:
            raise InputError(
                f"frames must be (first, stop) with 0 ≤ first ≤ stop, got {self.frames}"
            )

    def removed_at(self, t: int) -> frozenset[str]:
        """The actors removed in frame ``t``."""
        if self.frames is None or self.frames[0] <= t < self.frames[1]:
            return self.remove
        return frozenset()


# --------------------------------------------------------------------------- drawing
class Canvas:
    """An RGB image and an id buffer drawn with the same rasteriser (no anti-aliasing)."""

    def __init__(self, image: np.ndarray, hidden: frozenset[int] = frozenset()) -> None:
        self.image = image
        self.ids = np.zeros(image.shape[:2], np.int32)
        #: owners whose drawing is skipped: they still move and draw their random numbers
        self.hidden = hidden

    def ellipse(self, centre, axes, angle, colour, owner, thickness=-1) -> None:
        if owner in self.hidden:
            return
        c = (round(centre[0]), round(centre[1]))
        a = (max(1, round(axes[0])), max(1, round(axes[1])))
        cv2.ellipse(self.image, c, a, float(angle), 0, 360, colour, thickness, cv2.LINE_8)
        cv2.ellipse(self.ids, c, a, float(angle), 0, 360, int(owner), thickness, cv2.LINE_8)

    def line(self, p, q, colour, owner, thickness=1) -> None:
        if owner in self.hidden:
            return
        p, q = (round(p[0]), round(p[1])), (round(q[0]), round(q[1]))
        t = max(1, round(thickness))
        cv2.line(self.image, p, q, colour, t, cv2.LINE_8)
        cv2.line(self.ids, p, q, int(owner), t, cv2.LINE_8)

    def polygon(self, points, colour, owner) -> None:
        if owner in self.hidden:
            return
        pts = np.round(np.asarray(points)).astype(np.int32)
        cv2.fillPoly(self.image, [pts], colour, cv2.LINE_8)
        cv2.fillPoly(self.ids, [pts], int(owner), cv2.LINE_8)

    def rectangle(self, p, q, colour, owner) -> None:
        if owner in self.hidden:
            return
        p, q = (round(p[0]), round(p[1])), (round(q[0]), round(q[1]))
        cv2.rectangle(self.image, p, q, colour, -1, cv2.LINE_8)
        cv2.rectangle(self.ids, p, q, int(owner), -1, cv2.LINE_8)


SKIN = [(233, 192, 160), (198, 140, 100), (141, 85, 56), (90, 56, 37), (250, 214, 180)]
CLOTHES = [
    (40, 60, 140),
    (30, 30, 35),
    (200, 200, 205),
    (150, 30, 30),
    (230, 110, 20),  # orange too
    (60, 120, 60),
    (120, 80, 160),
    (240, 200, 40),
    (90, 90, 100),
    (20, 90, 160),
]


@dataclass
class Person:
    """A walker: foot position, velocity, looks, gait phase."""

    owner: int
    x: float
    y: float
    vx: float
    vy: float
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    phase: float
    size: float = 1.0

    def height(self, frame_height: int) -> float:
        # nearer (lower in the picture) looks bigger
        return self.size * frame_height * (0.17 + 0.13 * self.y / frame_height)


def random_person(owner: int, rng: np.random.Generator, width: int, height: int, speed=None):
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.3, 1.4) if speed is None else speed
    return Person(
        owner=owner,
        x=rng.uniform(0.1, 0.9) * width,
        y=rng.uniform(0.3, 0.95) * height,
        vx=speed * np.cos(angle) * width / 112,
        vy=0.6 * speed * np.sin(angle) * height / 112,
        shirt=CLOTHES[rng.integers(len(CLOTHES))],
        pants=CLOTHES[rng.integers(len(CLOTHES))],
        skin=SKIN[rng.integers(len(SKIN))],
        phase=rng.uniform(0, 2 * np.pi),
        size=rng.uniform(0.85, 1.15),
    )


def draw_person(
    canvas: Canvas,
    person: Person,
    frame_height: int,
    swing: float,
    tilt: float = 0.0,
    arms: tuple[float, float] | None = None,
    reach: float = 0.32,
) -> tuple[float, float, float]:
    """Draw a person (legs, torso, arms of length ``reach`` × height, head); returns the right
    shoulder and the height."""
    h = person.height(frame_height)
    x, y, owner = person.x, person.y, person.owner
    hip = (x + tilt * 0.45 * h, y - 0.45 * h)
    leg = max(1, h * 0.09)
    for side in (-1, 1):
        foot = (x + side * swing * 0.18 * h, y)
        canvas.line(hip, foot, person.pants, owner, leg)
    shoulder = (x + tilt * 0.8 * h, y - 0.78 * h)
    torso_c = ((hip[0] + shoulder[0]) / 2, (hip[1] + shoulder[1]) / 2)
    canvas.ellipse(torso_c, (0.13 * h, 0.2 * h), np.degrees(np.arctan(tilt)), person.shirt, owner)
    arm_angles = arms if arms is not None else (np.pi / 2 + 0.5 * swing, np.pi / 2 - 0.5 * swing)
    for side, angle in zip((-1, 1), arm_angles, strict=True):
        start = (shoulder[0] + side * 0.1 * h, shoulder[1])
        end = (start[0] + side * np.cos(angle) * reach * h, start[1] + np.sin(angle) * reach * h)
        canvas.line(start, end, person.shirt, owner, max(1, h * 0.07 * reach / 0.32))
    canvas.ellipse(
        (shoulder[0], shoulder[1] - 0.12 * h), (0.09 * h, 0.1 * h), 0, person.skin, owner
    )
    return shoulder[0] + 0.1 * h, shoulder[1], h


def walk(person: Person, width: int, height: int, rng: np.random.Generator) -> None:
    """Advance a walker one frame; it turns back at the picture's edges, sometimes turns."""
    person.x += person.vx
    person.y += person.vy
    if not 0.04 * width < person.x < 0.96 * width:
        person.vx = -person.vx
    if not 0.28 * height < person.y < 0.98 * height:
        person.vy = -person.vy
    if rng.random() < 0.02:
        angle = np.arctan2(person.vy, person.vx) + rng.normal(0, 0.8)
        speed = np.hypot(person.vx, person.vy)
        person.vx, person.vy = speed * np.cos(angle), 0.6 * speed * np.sin(angle)
    person.phase += 0.25 + 0.35 * np.hypot(person.vx, person.vy) * 112 / width


# --------------------------------------------------------------------------- scene
def textured_ground(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A paved plaza seen at an angle: tiles, stains, a grass strip."""
    base = np.array(
        rng.choice([(150, 145, 135), (120, 125, 120), (170, 160, 140), (110, 110, 115)])
    )
    noise = cv2.resize(
        rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32), (width, height)
    )
    ground = base[None, None, :] + 14 * noise[..., None] + rng.normal(0, 4, (height, width, 1))
    ground = ground.astype(np.float32)
    tile = int(rng.integers(10, 18)) * width // 112 + 4
    for x in range(0, width, tile):
        ground[:, x] *= 0.85
    for y in range(0, height, tile // 2 + 2):
        ground[y, :] *= 0.88
    horizon = int(height * rng.uniform(0.15, 0.25))  # a wall or hedge at the back
    wall = np.array(rng.choice([(90, 110, 70), (140, 120, 100), (80, 80, 90)]), np.float32)
    ground[:horizon] = wall + rng.normal(0, 6, (horizon, width, 1))
    for _ in range(int(rng.integers(3, 8))):  # stains
        c = (int(rng.integers(width)), int(rng.integers(horizon, height)))
        axes = (int(rng.integers(3, 10)), int(rng.integers(2, 6)))
        cv2.ellipse(ground, c, axes, 0, 0, 360, tuple(float(v) * 0.8 for v in base), -1)
    return np.clip(ground, 0, 255)


class Background:
    """The static part of a scene: ground frames (textured or from a real video)."""

    def __init__(self, rng, size, num_frames, video: np.ndarray | None) -> None:
        height, width = size
        if video is None:
            self.frames = None
            self.still = textured_ground(rng, height, width)
        else:
            offset = int(rng.integers(len(video)))
            self.frames = np.roll(video, -offset, axis=0)
            self.still = None
        self.num_frames = num_frames

    def frame(self, t: int) -> np.ndarray:
        if self.frames is None:
            return self.still.copy()
        return self.frames[t % len(self.frames)].astype(np.float32)


# --------------------------------------------------------------------------- anomalies
class Anomaly:
    """Base class of the anomaly actors: ``draw(canvas, t)`` draws frame ``t``."""

    start: int

    def advance(self, t: int, rng: np.random.Generator) -> None:
        """Move the actors to frame ``t`` (before drawing)."""

    def depth(self) -> float:
        """Where the actors stand (their feet's y): sets the drawing order among walkers."""
        raise NotImplementedError

    def draw(self, canvas: Canvas, t: int, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def actors(self) -> dict[str, tuple[int, ...]]:
        """The anomaly's actors by name, with their owner ids."""
        return {type(self).__name__.lower(): (ANOMALY_ID,)}


class Fight(Anomaly):
    """Two people meet at a point and fight: jerking, tilted bodies, flailing arms."""

    def __init__(self, rng, size, num_frames):
        height, width = size
        self.size = size
        self.start = int(rng.integers(int(0.15 * num_frames), int(0.45 * num_frames)))
        self.meet = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.5, 0.9) * height])
        self.people = []
        for k in range(2):
            person = random_person(ANOMALY_ID + k, rng, width, height)
            side = -1 if k == 0 else 1
            approach = rng.uniform(0.6, 1.2) * self.start
            person.x = self.meet[0] + side * min(approach, 0.45 * width)
            person.y = self.meet[1] + rng.uniform(-0.1, 0.1) * height
            self.people.append(person)
        self.origins = [np.array([p.x, p.y]) for p in self.people]
        self.gap = 0.07 * width

    def depth(self):
        return float(self.meet[1])

    def actors(self):
        return {f"fighter-{k + 1}": (person.owner,) for k, person in enumerate(self.people)}

    def draw(self, canvas, t, rng):
        height = self.size[0]
        for k, person in enumerate(self.people):
            side = -1 if k == 0 else 1
            target = self.meet + np.array([side * self.gap, 0])
            if t < self.start:  # walking towards each other
                share = t / max(self.start, 1)
                person.x, person.y = self.origins[k] + share * (target - self.origins[k])
                swing = np.sin(0.8 * t + person.phase)
                draw_person(canvas, person, height, swing)
            else:  # fighting: violent, erratic motion of both bodies and arms
                jerk = rng.normal(0, 0.07 * self.size[1], 2)
                person.x, person.y = target + jerk * np.array([1, 0.5])
                arms = tuple(rng.uniform(-np.pi, np.pi, 2))  # punches: long, thick, anywhere
                tilt = -side * rng.uniform(0.3, 0.9)  # lunging at, or reeling from, the other
                draw_person(canvas, person, height, rng.uniform(-1.8, 1.8), tilt, arms, reach=0.6)


class Fire(Anomaly):
    """A flickering, growing fire of yellow, orange and red tongues."""

    COLOURS = ((255, 240, 120), (255, 180, 40), (245, 110, 20), (210, 40, 10))

    def __init__(self, rng, size, num_frames):
        height, width = size
        self.start = int(rng.integers(int(0.15 * num_frames), int(0.45 * num_frames)))
        self.base = np.array([rng.uniform(0.15, 0.85) * width, rng.uniform(0.45, 0.92) * height])
        self.growth = rng.uniform(0.35, 0.7) * width / 112
        self.width = width

    def depth(self):
        return float(self.base[1])

    def draw(self, canvas, t, rng):
        if t < self.start:
            return
        age = t - self.start
        radius = min(0.05 * self.width + self.growth * age, 0.22 * self.width)
        for layer, colour in enumerate(reversed(self.COLOURS)):
            scale = 1 - 0.22 * layer
            for _ in range(3):
                dx = rng.normal(0, 0.35) * radius * scale
                tongue = radius * scale * rng.uniform(1.2, 2.2)
                points = [
                    (self.base[0] + dx - 0.5 * radius * scale, self.base[1]),
                    (self.base[0] + dx + rng.normal(0, 0.3) * radius, self.base[1] - tongue),
                    (self.base[0] + dx + 0.5 * radius * scale, self.base[1]),
                ]
                canvas.polygon(points, colour, ANOMALY_ID)
            canvas.ellipse(
                (self.base[0], self.base[1] - 0.2 * radius * scale),
                (0.6 * radius * scale, 0.3 * radius * scale),
                0,
                colour,
                ANOMALY_ID,
            )


class Shooting(Anomaly):
    """A walker stops, raises a rifle in both hands and fires bursts: big muzzle flashes, long
    tracer streaks, and gun smoke that lingers and drifts up between the shots."""

    FLASH = ((255, 150, 30), (255, 225, 90), (255, 255, 225))  # glow, rays, core

    def __init__(self, rng, size, num_frames):
        height, width = size
        self.size = size
        self.start = int(rng.integers(int(0.15 * num_frames), int(0.45 * num_frames)))
        self.shooter = random_person(ANOMALY_ID, rng, width, height, speed=rng.uniform(0.4, 0.9))
        self.direction = rng.choice([-1, 1])
        self.aim = rng.uniform(-0.35, 0.2)
        self.bullets: list[list[float]] = []
        self.smoke: list[list[float]] = []  # x, y, radius, age

    def advance(self, t, rng):
        height, width = self.size
        if t < self.start:
            walk(self.shooter, width, height, rng)
        elif t == self.start:  # turns to fire into the plaza, not out of the picture
            self.direction = 1 if self.shooter.x < width / 2 else -1

    def depth(self):
        return float(self.shooter.y)

    def actors(self):
        return {"shooter": (ANOMALY_ID,)}

    def draw(self, canvas, t, rng):
        height, width = self.size
        person = self.shooter
        if t < self.start:
            draw_person(canvas, person, height, np.sin(person.phase))
            return
        # at least a tenth of the frame tall: a far-away shooter still shows a visible rifle
        h = max(person.height(height), 0.1 * height)
        for puff in self.smoke:  # behind the shooter: grey puffs that grow, rise and drift
            x, y, radius, age = puff
            grey = int(160 + 8 * age)
            canvas.ellipse((x, y), (radius, 0.8 * radius), 0, (grey, grey, grey - 5), ANOMALY_ID)
            puff[0] += self.direction * 0.01 * width
            puff[1] -= 0.012 * height
            puff[2] *= 1.12
            puff[3] += 1
        self.smoke = [p for p in self.smoke if p[3] < 8]
        angle = self.aim if self.direction > 0 else np.pi - self.aim
        # both arms forward along the rifle (the left arm's angle mirrors the right one's)
        shoulder_x, shoulder_y, _ = draw_person(
            canvas, person, height, 0.0, 0.0, (np.pi - angle, angle)
        )
        if self.direction < 0:
            shoulder_x -= 0.2 * person.height(height)
        hand = (shoulder_x + np.cos(angle) * 0.3 * h, shoulder_y + np.sin(angle) * 0.3 * h)
        stock = (hand[0] - np.cos(angle) * 0.2 * h, hand[1] - np.sin(angle) * 0.2 * h)
        muzzle = (hand[0] + np.cos(angle) * 0.4 * h, hand[1] + np.sin(angle) * 0.4 * h)
        canvas.line(stock, muzzle, (20, 20, 20), ANOMALY_ID, max(3, 0.09 * h))
        speed = 0.2 * width
        for bullet in self.bullets:  # tracer streaks
            x, y, a = bullet
            head = (x + np.cos(a) * speed, y + np.sin(a) * speed)
            canvas.line((x, y), head, (255, 215, 80), ANOMALY_ID, max(2, 0.025 * width))
            bullet[0], bullet[1] = head
        self.bullets = [b for b in self.bullets if 0 <= b[0] < width and 0 <= b[1] < height]
        if (t - self.start) % 4 != 3:  # bursts: three shots, a pause
            glow, ray_colour, core = self.FLASH
            reach = rng.uniform(0.45, 0.6) * h
            canvas.ellipse(muzzle, (0.22 * h, 0.17 * h), np.degrees(angle), glow, ANOMALY_ID)
            for ray in np.linspace(-0.9, 0.9, 5) + angle + rng.uniform(-0.15, 0.15):
                tip = (muzzle[0] + np.cos(ray) * reach, muzzle[1] + np.sin(ray) * reach)
                canvas.line(muzzle, tip, ray_colour, ANOMALY_ID, max(2, 0.05 * h))
            canvas.ellipse(muzzle, (0.11 * h, 0.11 * h), 0, core, ANOMALY_ID)
            self.bullets.append([muzzle[0], muzzle[1], angle + rng.normal(0, 0.04)])
            self.smoke.append([muzzle[0], muzzle[1] - 0.05 * h, 0.1 * h, 0])


ANOMALIES: dict[str, Callable] = {"fight": Fight, "fire": Fire, "shooting": Shooting}


# --------------------------------------------------------------------------- rendering
OBSTACLE = (70, 68, 65)
LAMP = (255, 250, 200)


@dataclass
class Scene:
    """Everything in a clip but the anomaly: ground, walkers, obstacles and distractors."""

    ground: Background
    walkers: list[Person]
    obstacles: list[tuple[float, float, float, float]]
    lamp: tuple[float, float, int] | None
    shadow: tuple[float, float, float, float] | None
    light: str
    light_at: int
    noise_sigma: float

    @classmethod
    def random(cls, rng, size, num_frames, background) -> Scene:
        height, width = size
        ground = Background(rng, size, num_frames, background)
        walkers = [random_person(i + 1, rng, width, height) for i in range(rng.integers(1, 5))]
        if rng.random() < 0.3:  # a runner
            walkers.append(random_person(50, rng, width, height, speed=rng.uniform(2.0, 3.0)))
        if rng.random() < 0.3:  # two friends walking close together: not a fight
            friend, pal = (
                random_person(51, rng, width, height),
                random_person(52, rng, width, height),
            )
            pal.x, pal.y, pal.vx, pal.vy = friend.x + 0.08 * width, friend.y, friend.vx, friend.vy
            walkers += [friend, pal]
        obstacles = [
            (
                rng.uniform(0.05, 0.9) * width,
                rng.uniform(0.4, 0.95) * height,
                rng.uniform(0.04, 0.09) * width,
                rng.uniform(0.05, 0.12) * height,
            )
            for _ in range(rng.integers(0, 3))
        ]
        lamp = None
        if rng.random() < 0.35:  # a blinking lamp: bright flashes that are not gunfire
            lamp = (
                rng.uniform(0.1, 0.9) * width,
                rng.uniform(0.08, 0.3) * height,
                int(rng.integers(2, 6)),
            )
        shadow = None
        if rng.random() < 0.5:  # a cloud shadow drifting across
            start = (rng.uniform(-0.3, 0.3) * width, rng.uniform(0.3, 0.9) * height)
            shadow = (*start, rng.uniform(0.4, 1.2) * width / 112, rng.uniform(0.2, 0.4) * width)
        return cls(
            ground,
            walkers,
            obstacles,
            lamp,
            shadow,
            light=str(rng.choice(["steady", "drift", "switch"])),
            light_at=int(rng.integers(num_frames)),
            noise_sigma=float(rng.uniform(1.5, 5.0)),
        )

    def lighting(self, t: int, num_frames: int) -> float:
        if self.light == "drift":
            return 0.85 + 0.3 * t / max(num_frames - 1, 1)
        if self.light == "switch":
            return 1.0 if t < self.light_at else 0.75
        return 1.0

    def actors(self) -> dict[str, tuple[int, ...]]:
        """Every actor of the scene by name, with its owner ids (see :class:`SynthClip`)."""
        names = {50: "runner", 51: "pair-1", 52: "pair-2"}
        actors = {names.get(p.owner, f"walker-{p.owner}"): (p.owner,) for p in self.walkers}
        for number in range(len(self.obstacles)):
            actors[f"obstacle-{number + 1}"] = (OBSTACLE_ID + number,)
        if self.lamp is not None:
            actors["lamp"] = (LAMP_ID,)
        if self.shadow is not None:
            actors["shadow"] = (SHADOW_ID,)
        return actors


def render_clip(
    kind: str,
    seed: int | tuple[int, ...],
    size: tuple[int, int] = (112, 112),
    num_frames: int = 40,
    *,
    background: np.ndarray | None = None,
    include_anomaly: bool = True,
    scene_seed: int | tuple[int, ...] | None = None,
    intervention: Intervention | None = None,
) -> SynthClip:
    """Render one clip of ``kind`` from ``seed``.

    ``scene_seed``, when given, draws everything but the anomaly from it instead of ``seed``
    (the evidence-controlled family shares one scene among the classes). ``intervention``
    draws the clip again with actors removed, the scene redrawn or the anomaly shifted in time
    (:class:`Intervention`); ``include_anomaly=False`` is ``Intervention({"anomaly"})``: the
    same scene without the anomaly's actors, every other pixel unchanged.
    """
    if kind not in SYNTH_CLASSES:
        raise InputError(
            f"unknown synthetic class {kind!r}; choose from {', '.join(SYNTH_CLASSES)}"
        )
    intervention = intervention or Intervention()
    if not include_anomaly:
        intervention = replace(intervention, remove=intervention.remove | {ANOMALY})
    schedule = [(kind, 0, num_frames)] if kind in ANOMALIES else []
    rendered = _render(seed, size, num_frames, background, schedule, intervention, scene_seed)
    start = rendered.events[0][1] if rendered.events else None
    return SynthClip(
        kind,
        rendered.frames,
        rendered.masks,
        (rendered.labels >= 0).astype(np.int64),
        start,
        rendered.details,
        rendered.ids,
        rendered.actors,
    )


@dataclass(frozen=True)
class SceneSpec:
    """Everything that determines one synthetic clip: what :func:`render_clip` is given.

    A dataset written by ``vadx synth`` records it for every clip (:func:`scene_specs`), so
    the clip can be drawn again — as it was, or changed by an :class:`Intervention`.
    """

    kind: str
    seed: tuple[int, ...]
    size: tuple[int, int] = (112, 112)
    num_frames: int = 40
    scene_seed: tuple[int, ...] | None = None
    background: np.ndarray | None = field(default=None, repr=False, compare=False)

    def render(self, intervention: Intervention | None = None) -> SynthClip:
        """The clip, changed by ``intervention`` when given (equal to the original without)."""
        return render_clip(
            self.kind,
            self.seed,
            self.size,
            self.num_frames,
            background=self.background,
            scene_seed=self.scene_seed,
            intervention=intervention,
        )


def scene_specs(data: str | os.PathLike[str]) -> dict[Path, SceneSpec]:
    """The :class:`SceneSpec` of every clip of a ``vadx synth`` dataset (its folder or its
    ``manifest.json``), by the clip's resolved video path."""
    path = Path(data)
    manifest_path = path / "manifest.json" if path.is_dir() else path
    try:
        manifest = read_json(manifest_path, InputError)
    except (OSError, ValueError) as err:
        raise InputError(f"{manifest_path}: not a readable vadx synth manifest ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("generator") != "vadx synth":
        raise InputError(f"{manifest_path} was not written by vadx synth")
    try:
        config = SynthConfig(
            **{
                **manifest["config"],
                "clips": tuple(manifest["config"]["clips"]),
                "size": tuple(manifest["config"]["size"]),
                "classes": tuple(manifest["config"]["classes"]),
            }
        )
    except (KeyError, TypeError) as err:
        raise InputError(f"{manifest_path}: its config is not vadx synth's ({err})") from err
    background = None
    if config.background is not None:
        background = load_background(config.background, config.size)
    specs = {}
    for entry in manifest.get("clips", []):
        scene = entry.get("scene_seed")
        specs[(manifest_path.parent / entry["video"]).resolve()] = SceneSpec(
            entry["class"],
            tuple(entry["seed"]),
            config.size,
            config.num_frames,
            None if scene is None else tuple(scene),
            background,
        )
    return specs


@dataclass
class SynthVideo:
    """A long scene with several anomalies: frames, masks, per-frame class (-1: normal) and
    the true events ``(class, first frame, last frame)``."""

    frames: np.ndarray
    masks: np.ndarray
    frame_classes: np.ndarray
    events: list[tuple[str, int, int]]


def render_long(
    seed: int | tuple[int, ...],
    schedule: list[tuple[str, int]],
    size: tuple[int, int] = (112, 112),
    background: np.ndarray | None = None,
) -> SynthVideo:
    """One continuous scene through ``schedule`` — ``(class, frames)`` segments in order,
    e.g. ``[("normal", 60), ("fight", 50), ("normal", 40), ("fire", 60)]``. Each anomaly
    starts at a random frame of its segment and lasts to the segment's end."""
    for kind, length in schedule:
        if kind not in SYNTH_CLASSES or length < 8:
            raise InputError(f"bad segment ({kind!r}, {length}): a class and at least 8 frames")
    placed, offset = [], 0
    for kind, length in schedule:
        if kind in ANOMALIES:
            placed.append((kind, offset, length))
        offset += length
    rendered = _render(seed, size, offset, background, placed)
    return SynthVideo(rendered.frames, rendered.masks, rendered.labels, rendered.events)


@dataclass
class _Rendered:
    frames: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    events: list[tuple[str, int, int]]
    details: dict[str, Any]
    ids: np.ndarray
    actors: dict[str, tuple[int, ...]]


def _render(
    seed, size, num_frames, background, schedule, intervention=None, scene_seed=None
) -> _Rendered:
    """The renderer behind :func:`render_clip` and :func:`render_long`."""
    height, width = size
    intervention = intervention or Intervention()
    _, _, anomaly_seed, draw_seed, _ = np.random.SeedSequence(seed).spawn(5)
    if intervention.context_seed is not None:
        scene_seed = intervention.context_seed
    layout_seed, walk_seed, _, _, noise_seed = np.random.SeedSequence(
        seed if scene_seed is None else scene_seed
    ).spawn(5)
    scene = Scene.random(np.random.default_rng(layout_seed), size, num_frames, background)
    walk_rng, noise_rng = np.random.default_rng(walk_seed), np.random.default_rng(noise_seed)
    draw_rng = np.random.default_rng(draw_seed)
    seeds = [anomaly_seed] if len(schedule) == 1 else anomaly_seed.spawn(len(schedule))
    actors = [
        (kind, offset, length, ANOMALIES[kind](np.random.default_rng(s), size, length))
        for (kind, offset, length), s in zip(schedule, seeds, strict=True)
    ]
    for _, _, length, anomaly in actors:
        anomaly.start = int(np.clip(anomaly.start + intervention.shift, 1, length - 1))
    names = scene.actors()
    for _, _, _, anomaly in actors:
        names.update(anomaly.actors())
    anomaly_names = {n for n, owners in names.items() if min(owners) >= ANOMALY_ID}
    unknown = intervention.remove - set(names) - {ANOMALY}
    if unknown:
        raise InputError(
            f"no actor {', '.join(sorted(unknown))} in this clip; it has {', '.join(names)}"
        )
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width), bool)
    ids = np.zeros((num_frames, height, width), np.int32)
    labels = np.full(num_frames, -1, np.int64)
    for t in range(num_frames):
        removed = set(intervention.removed_at(t))
        if ANOMALY in removed:
            removed = (removed - {ANOMALY}) | anomaly_names
        hidden = frozenset(owner for name in removed for owner in names[name])
        canvas = Canvas(scene.ground.frame(t), hidden)
        # painter's order: whatever stands lower in the picture is nearer and drawn later
        layers: list[tuple[float, Callable[[], object]]] = []
        for person in scene.walkers:
            walk(person, width, height, walk_rng)
            layers.append((person.y, partial(_draw_walker, canvas, person, height)))
        for number, (x, y, w, h) in enumerate(scene.obstacles):
            owner = OBSTACLE_ID + number
            rectangle = partial(canvas.rectangle, (x, y - h), (x + w, y), OBSTACLE, owner)
            layers.append((y, rectangle))
        active = None
        for kind, offset, length, anomaly in actors:
            if offset <= t < offset + length:
                active = (kind, t - offset, anomaly)
                anomaly.advance(t - offset, draw_rng)
                # drawn even when hidden: its random numbers and its state (smoke, bullets)
                # stay those of the original clip
                layers.append(
                    (anomaly.depth(), partial(anomaly.draw, canvas, t - offset, draw_rng))
                )
        for _, draw in sorted(layers, key=lambda layer: layer[0]):
            draw()
        if scene.lamp is not None and t % scene.lamp[2] == 0:
            radius = max(2, width // 40)
            canvas.ellipse(scene.lamp[:2], (radius, radius), 0, LAMP, LAMP_ID)
        image = canvas.image
        if scene.shadow is not None and SHADOW_ID not in hidden:
            sx, sy, speed, radius = scene.shadow
            shade = np.ones((height, width), np.float32)
            centre = (round(sx + speed * t), round(sy))
            cv2.ellipse(shade, centre, (round(radius), round(radius / 2)), 0, 0, 360, 0.7, -1)
            image *= shade[..., None]
            canvas.ids[(shade < 1) & (canvas.ids == 0)] = SHADOW_ID
        image *= scene.lighting(t, num_frames)
        image += noise_rng.normal(0, scene.noise_sigma, image.shape).astype(np.float32)
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)
        ids[t] = canvas.ids
        if active is not None and active[1] >= active[2].start:
            labels[t] = SYNTH_CLASSES.index(active[0])
            masks[t] = canvas.ids >= ANOMALY_ID
    events = [(kind, offset + a.start, offset + length - 1) for kind, offset, length, a in actors]
    details = {
        "light": scene.light,
        "walkers": len(scene.walkers),
        "lamp": scene.lamp is not None,
        "shadow": scene.shadow is not None,
    }
    return _Rendered(frames, masks, labels, events, details, ids, names)


def _draw_walker(canvas: Canvas, person: Person, height: int) -> None:
    draw_person(canvas, person, height, np.sin(person.phase))


# --------------------------------------------------------------------------- dataset
def load_background(path: str | os.PathLike[str], size: tuple[int, int], limit: int = 300):
    """Frames of a real video, centre-cropped to ``size``, to paste scenes onto."""
    from vadx.video.decode import VideoReader
    from vadx.video.preprocess import fit_frames

    with VideoReader(path) as video:
        count = min(len(video), limit)
        frames = video.read_range(0, count).data
    return fit_frames(frames, size, "crop")[0]


def clip_seed(seed: int, kind: str, split: str, number: int) -> tuple[int, int, int, int]:
    """The seed of one clip: independent of how many other clips are generated."""
    return (seed, SYNTH_CLASSES.index(kind), SPLITS.index(split), number)


def scene_seed(config: SynthConfig, split: str, number: int) -> tuple[int, ...] | None:
    """The seed of the scene around clip ``number`` of ``split``: None in the default family
    (each clip's own seed draws its scene), shared by the clips of every class in the
    evidence-controlled family — so they differ in their anomaly alone."""
    if config.family == "default":
        return None
    return (config.seed, len(SYNTH_CLASSES), SPLITS.index(split), number)


def generate(
    out: str | os.PathLike[str],
    config: SynthConfig = SynthConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic dataset to ``out``; returns the path of its ``manifest.json``.

    Layout: ``out/<split>/<class>/<clip>.mp4`` with ``<clip>.masks.npz`` (masks and frame
    labels) beside each video — the folder-per-class layout — ``out/manifest.json``
    describing every clip (class, split, seed, anomaly start, mask area per frame), and
    ``out/preview.png``: a first clip of each class, its anomaly outlined in green. The files
    appear together when the last is written, ``manifest.json`` last (an interrupted run
    leaves nothing).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError(f"{out} exists and is not a vadx synth dataset; choose another folder")
    background = None
    if config.background is not None:
        background = load_background(config.background, config.size)
    jobs = [
        (split, kind, number)
        for split, count in zip(SPLITS, config.clips, strict=True)
        for kind in config.classes
        for number in range(count)
    ]
    with staged_folder(out, last="manifest.json") as staging:
        clips = _write_clips(staging, jobs, config, background, progress)
        write_png(staging / "preview.png", preview(config, background))
        manifest = {
            "generator": "vadx synth",
            "vadx_version": __version__,
            "config": asdict(config),
            "classes": list(config.classes),
            "clips": clips,
        }
        write_json(staging / "manifest.json", manifest)
    return out / "manifest.json"


#: one clip of ``manifest.json``: its files, split, class, seeds, anomaly start, the mask's
#: area per frame and what the scene holds (a TypedDict: "class" is not a Python name)
ManifestClip = TypedDict(
    "ManifestClip",
    {
        "video": str,
        "masks": str,
        "split": str,
        "class": str,
        "seed": list[int],
        "scene_seed": list[int] | None,
        "anomaly_start": int | None,
        "mask_area": list[int],
        "scene": dict[str, Any],
    },
)


def _write_clips(
    out: Path,
    jobs: list[tuple[str, str, int]],
    config: SynthConfig,
    background: np.ndarray | None,
    progress: Callable[[int, int], None] | None,
) -> list[ManifestClip]:
    """Render and write the clips of ``jobs`` (split, class, number) into ``out``; returns
    their manifest entries."""
    clips: list[ManifestClip] = []
    for done, (split, kind, number) in enumerate(jobs, 1):
        seed = clip_seed(config.seed, kind, split, number)
        shared = scene_seed(config, split, number)
        clip = render_clip(
            kind, seed, config.size, config.num_frames, background=background, scene_seed=shared
        )
        name = f"{kind}_{split}_{number:04d}"
        video = out / split / kind / f"{name}.mp4"
        write_mp4(video, clip.frames, fps=config.fps)
        write_masks(video.with_name(f"{name}.masks.npz"), clip.masks, clip.frame_labels)
        clips.append(
            {
                "video": str(video.relative_to(out)),
                "masks": str(video.with_name(f"{name}.masks.npz").relative_to(out)),
                "split": split,
                "class": kind,
                "seed": list(seed),
                "scene_seed": None if shared is None else list(shared),
                "anomaly_start": clip.start,
                "mask_area": clip.masks.reshape(len(clip.masks), -1).sum(1).tolist(),
                "scene": clip.details,
            }
        )
        if progress is not None:
            progress(done, len(jobs))
    return clips


def preview(config: SynthConfig, background: np.ndarray | None = None, columns: int = 6):
    """Contact sheet: one row per class (its first training clip), frames spread over the
    clip, the anomaly mask outlined in green."""
    rows = []
    for kind in config.classes:
        clip = render_clip(
            kind,
            clip_seed(config.seed, kind, "train", 0),
            config.size,
            config.num_frames,
            background=background,
            scene_seed=scene_seed(config, "train", 0),
        )
        picks = np.linspace(0, config.num_frames - 1, columns).round().astype(int)
        tiles = []
        for t in picks:
            tile = clip.frames[t].copy()
            outline, _ = cv2.findContours(
                clip.masks[t].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            cv2.drawContours(tile, outline, -1, (0, 255, 0), 1)
            cv2.putText(
                tile,
                f"{kind} t={t}",
                (2, 10),
                cv2.FONT_HERSHEY_PLAIN,
                0.7,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            tiles.append(np.pad(tile, ((1, 1), (1, 1), (0, 0))))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
